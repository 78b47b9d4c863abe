//! rkube-apiserver: the Kubernetes API server (being written).
