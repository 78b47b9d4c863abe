//! Encryption at rest: a [`Store`] wrapper that encrypts the values of chosen key prefixes
//! (Secrets, by the upstream EncryptionConfiguration) before they reach the backend, and
//! decrypts them on every read and watch event, as kube-apiserver's storage transformers do.
//!
//! Stored values carry upstream's prefix, `k8s:enc:<provider>:v1:<key name>:`, then:
//! - `aesgcm`: a 12-byte random nonce and the AES-GCM sealed value (the storage key is the
//!   authenticated data, so a value copied under another key does not decrypt);
//! - `aescbc`: a 16-byte random IV and the AES-CBC ciphertext with PKCS#7 padding.
//!
//! The first provider of a rule encrypts new writes; every provider of the rule can read, so
//! keys rotate by adding the new key first. `identity` reads values without a prefix
//! (data written before encryption was turned on) and, when first, writes plain text.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use crate::{Deleted, Entry, Error, ListOptions, Page, Result, Revision, Store, WatchStream};

/// One way to store values.
#[derive(Clone)]
pub enum Provider {
    Identity,
    /// Named AES keys (16, 24 or 32 bytes); the first encrypts.
    AesGcm(Vec<(String, Vec<u8>)>),
    AesCbc(Vec<(String, Vec<u8>)>),
}

impl std::fmt::Debug for Provider {
    // Never prints key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |keys: &Vec<(String, Vec<u8>)>| keys.iter().map(|k| k.0.clone()).collect::<Vec<_>>();
        match self {
            Provider::Identity => f.write_str("identity"),
            Provider::AesGcm(keys) => write!(f, "aesgcm{:?}", names(keys)),
            Provider::AesCbc(keys) => write!(f, "aescbc{:?}", names(keys)),
        }
    }
}

/// The providers for keys under some prefixes (one `resources` entry upstream).
#[derive(Debug, Clone)]
pub struct Rule {
    /// Storage key prefixes, e.g. `/registry/secrets/`.
    pub prefixes: Vec<String>,
    pub providers: Vec<Provider>,
}

/// Why a provider configuration is unusable.
pub fn validate(rules: &[Rule]) -> std::result::Result<(), String> {
    for rule in rules {
        if rule.providers.is_empty() {
            return Err(format!("no providers for {:?}", rule.prefixes));
        }
        for provider in &rule.providers {
            if let Provider::AesGcm(keys) | Provider::AesCbc(keys) = provider {
                if keys.is_empty() {
                    return Err(format!("{provider:?} has no keys"));
                }
                for (name, key) in keys {
                    if ![16, 24, 32].contains(&key.len()) {
                        return Err(format!("key {name} is {} bytes; AES needs 16, 24 or 32", key.len()));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Encrypts and decrypts values of `inner` according to `rules`.
pub struct EncryptedStore {
    inner: Arc<dyn Store>,
    rules: Arc<Vec<Rule>>,
}

impl EncryptedStore {
    /// Wraps `inner`; fails if a rule is unusable (see [`validate`]).
    pub fn new(inner: Arc<dyn Store>, rules: Vec<Rule>) -> std::result::Result<Self, String> {
        validate(&rules)?;
        Ok(EncryptedStore { inner, rules: Arc::new(rules) })
    }
}

fn rule_for<'a>(rules: &'a [Rule], key: &str) -> Option<&'a Rule> {
    rules.iter().find(|r| r.prefixes.iter().any(|p| key.starts_with(p.as_str())))
}

fn prefix(provider: &str, key_name: &str) -> String {
    format!("k8s:enc:{provider}:v1:{key_name}:")
}

fn failed(key: &str, why: &str) -> Error {
    Error::Corrupt { path: key.to_string(), reason: why.to_string() }
}

fn random(n: usize) -> Vec<u8> {
    use ring::rand::SecureRandom;
    let mut out = vec![0u8; n];
    // The system RNG failing is not something to carry on after.
    ring::rand::SystemRandom::new().fill(&mut out).expect("the system random generator failed");
    out
}

fn gcm_key(key: &[u8]) -> Option<ring::aead::LessSafeKey> {
    let algorithm = match key.len() {
        16 => &ring::aead::AES_128_GCM,
        32 => &ring::aead::AES_256_GCM,
        _ => return None,
    };
    ring::aead::UnboundKey::new(algorithm, key).ok().map(ring::aead::LessSafeKey::new)
}

/// `value` as the rule for `key` stores it.
fn encrypt(rules: &[Rule], key: &str, value: Bytes) -> Result<Bytes> {
    let Some(rule) = rule_for(rules, key) else { return Ok(value) };
    match &rule.providers[0] {
        Provider::Identity => Ok(value),
        Provider::AesGcm(keys) => {
            let (name, secret) = &keys[0];
            let sealer = gcm_key(secret).ok_or_else(|| failed(key, "AES-GCM needs a 16 or 32 byte key"))?;
            let nonce = random(12);
            let mut data = value.to_vec();
            let n = ring::aead::Nonce::try_assume_unique_for_key(&nonce).map_err(|_| failed(key, "nonce"))?;
            sealer
                .seal_in_place_append_tag(n, ring::aead::Aad::from(key.as_bytes()), &mut data)
                .map_err(|_| failed(key, "AES-GCM sealing failed"))?;
            let mut out = prefix("aesgcm", name).into_bytes();
            out.extend_from_slice(&nonce);
            out.extend_from_slice(&data);
            Ok(out.into())
        }
        Provider::AesCbc(keys) => {
            let (name, secret) = &keys[0];
            let iv = random(16);
            let mut out = prefix("aescbc", name).into_bytes();
            out.extend_from_slice(&iv);
            out.extend_from_slice(&aes_cbc::encrypt(secret, &iv, &value).ok_or_else(|| failed(key, "bad AES key"))?);
            Ok(out.into())
        }
    }
}

/// The plain value of a stored `value` under `key`.
fn decrypt(rules: &[Rule], key: &str, value: Bytes) -> Result<Bytes> {
    let Some(rule) = rule_for(rules, key) else { return Ok(value) };
    for provider in &rule.providers {
        let (kind, keys) = match provider {
            Provider::Identity => continue,
            Provider::AesGcm(keys) => ("aesgcm", keys),
            Provider::AesCbc(keys) => ("aescbc", keys),
        };
        for (name, secret) in keys {
            let Some(rest) = value.strip_prefix(prefix(kind, name).as_bytes()) else { continue };
            return match provider {
                Provider::AesGcm(_) => {
                    let opener = gcm_key(secret).ok_or_else(|| failed(key, "bad AES-GCM key"))?;
                    if rest.len() < 12 + 16 {
                        return Err(failed(key, "encrypted value is too short"));
                    }
                    let (nonce, sealed) = rest.split_at(12);
                    let n = ring::aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| failed(key, "nonce"))?;
                    let mut data = sealed.to_vec();
                    let plain = opener
                        .open_in_place(n, ring::aead::Aad::from(key.as_bytes()), &mut data)
                        .map_err(|_| failed(key, "AES-GCM authentication failed"))?;
                    Ok(Bytes::copy_from_slice(plain))
                }
                _ => {
                    if rest.len() < 32 || rest.len() % 16 != 0 {
                        return Err(failed(key, "encrypted value has a bad length"));
                    }
                    let (iv, data) = rest.split_at(16);
                    aes_cbc::decrypt(secret, iv, data).map(Bytes::from).ok_or_else(|| failed(key, "AES-CBC decryption failed"))
                }
            };
        }
    }
    if value.starts_with(b"k8s:enc:") {
        return Err(failed(key, "encrypted with a provider or key that is not configured"));
    }
    if rule.providers.iter().any(|p| matches!(p, Provider::Identity)) {
        return Ok(value);
    }
    Err(failed(key, "stored unencrypted, and the identity provider is not configured"))
}

/// AES-CBC with PKCS#7 padding over ring-free block ciphers (ring has no CBC).
mod aes_cbc {
    use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};

    pub fn encrypt(key: &[u8], iv: &[u8], plain: &[u8]) -> Option<Vec<u8>> {
        use aes::cipher::block_padding::Pkcs7;
        Some(match key.len() {
            16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv).ok()?.encrypt_padded_vec_mut::<Pkcs7>(plain),
            24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, iv).ok()?.encrypt_padded_vec_mut::<Pkcs7>(plain),
            32 => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv).ok()?.encrypt_padded_vec_mut::<Pkcs7>(plain),
            _ => return None,
        })
    }

    pub fn decrypt(key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        use aes::cipher::block_padding::Pkcs7;
        match key.len() {
            16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv).ok()?.decrypt_padded_vec_mut::<Pkcs7>(data).ok(),
            24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv).ok()?.decrypt_padded_vec_mut::<Pkcs7>(data).ok(),
            32 => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv).ok()?.decrypt_padded_vec_mut::<Pkcs7>(data).ok(),
            _ => None,
        }
    }
}

fn open_entry(rules: &[Rule], mut entry: Entry) -> Result<Entry> {
    entry.value = decrypt(rules, &entry.key, entry.value)?;
    Ok(entry)
}

#[async_trait::async_trait]
impl Store for EncryptedStore {
    async fn get(&self, key: &str) -> Result<Option<Entry>> {
        self.inner.get(key).await?.map(|e| open_entry(&self.rules, e)).transpose()
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<Page> {
        let mut page = self.inner.list(prefix, options).await?;
        page.entries = page.entries.into_iter().map(|e| open_entry(&self.rules, e)).collect::<Result<_>>()?;
        Ok(page)
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        self.inner.create(key, encrypt(&self.rules, key, value)?).await
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision> {
        self.inner.update(key, encrypt(&self.rules, key, value)?, expected).await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted> {
        let mut deleted = self.inner.delete(key, expected).await?;
        deleted.prev = open_entry(&self.rules, deleted.prev)?;
        Ok(deleted)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let rules = Arc::clone(&self.rules);
        let stream = self.inner.watch(prefix, after).await?;
        Ok(stream
            .map(move |item| {
                let mut event = item?;
                event.entry = open_entry(&rules, event.entry)?;
                event.prev = event.prev.map(|p| open_entry(&rules, p)).transpose()?;
                Ok(event)
            })
            .boxed())
    }

    async fn compact(&self, up_to: Revision) -> Result<()> {
        self.inner.compact(up_to).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.inner.current_revision().await
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        self.inner.compacted_revision().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(providers: Vec<Provider>) -> Vec<Rule> {
        vec![Rule { prefixes: vec!["/registry/secrets/".into()], providers }]
    }

    #[test]
    fn round_trips_and_hides_the_value() {
        let gcm = Provider::AesGcm(vec![("k1".into(), vec![7; 32])]);
        let cbc = Provider::AesCbc(vec![("k2".into(), vec![9; 32])]);
        for (provider, authenticated) in [(gcm, true), (cbc, false)] {
            let rules = rules(vec![provider, Provider::Identity]);
            let key = "/registry/secrets/ns/s";
            let stored = encrypt(&rules, key, Bytes::from_static(b"top-secret-value")).unwrap();
            assert!(stored.starts_with(b"k8s:enc:"));
            assert!(!stored.windows(10).any(|w| w == b"top-secret"), "plain text in {stored:?}");
            assert_eq!(&decrypt(&rules, key, stored.clone()).unwrap()[..], b"top-secret-value");
            // GCM authenticates the storage key: a value copied under another key fails
            // (CBC has no authenticated data, upstream neither).
            let moved = decrypt(&rules, "/registry/secrets/ns/other", stored.clone());
            assert_eq!(moved.is_err(), authenticated);
            // Old plain data stays readable through identity.
            assert_eq!(&decrypt(&rules, key, Bytes::from_static(b"old")).unwrap()[..], b"old");
            // Other resources are untouched.
            let cm = encrypt(&rules, "/registry/configmaps/ns/c", Bytes::from_static(b"x")).unwrap();
            assert_eq!(&cm[..], b"x");
        }
    }

    #[test]
    fn rotation_reads_with_any_listed_key_and_refuses_unknown_ones() {
        let old = rules(vec![Provider::AesGcm(vec![("old".into(), vec![1; 32])])]);
        let key = "/registry/secrets/ns/s";
        let stored = encrypt(&old, key, Bytes::from_static(b"v")).unwrap();
        let rotated = rules(vec![Provider::AesGcm(vec![("new".into(), vec![2; 32]), ("old".into(), vec![1; 32])])]);
        assert_eq!(&decrypt(&rotated, key, stored.clone()).unwrap()[..], b"v");
        let without = rules(vec![Provider::AesGcm(vec![("new".into(), vec![2; 32])]), Provider::Identity]);
        assert!(decrypt(&without, key, stored).is_err());
        let no_identity = rules(vec![Provider::AesCbc(vec![("k".into(), vec![2; 16])])]);
        assert!(decrypt(&no_identity, key, Bytes::from_static(b"plain")).is_err());
        assert!(validate(&rules(vec![Provider::AesCbc(vec![("k".into(), vec![2; 10])])])).is_err());
    }
}
