//! The errors of the PKI crate.

use std::path::PathBuf;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while creating, loading or issuing cluster credentials.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or created.
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written (temp file, fsync or rename).
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Key generation or certificate signing failed.
    #[error("generating {what}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    /// A certificate file exists but cannot be used.
    #[error("{path} does not hold a usable certificate: {reason}")]
    CertificateInvalid { path: PathBuf, reason: String },
    /// A private key file exists but cannot be parsed.
    #[error("{path} does not hold a usable private key")]
    KeyInvalid {
        path: PathBuf,
        #[source]
        source: rcgen::Error,
    },
    /// One half of the CA is present and the other is missing: regenerating it would
    /// silently invalidate every credential issued so far, so an operator must decide.
    #[error(
        "{present} exists but {missing} is missing; restore it or remove both to create a new CA"
    )]
    CaIncomplete { present: PathBuf, missing: PathBuf },
    /// A service CIDR that is not `address/prefix` or holds fewer than two addresses.
    #[error("invalid service CIDR {cidr:?}: {reason}")]
    CidrInvalid { cidr: String, reason: &'static str },
    /// A DNS name that cannot appear in a certificate.
    #[error("invalid DNS name {name:?} for a certificate")]
    NameInvalid {
        name: String,
        #[source]
        source: rcgen::Error,
    },
}
