//! Keyed pseudonyms: the only person key the lake ever sees.
//!
//! A lake `person_id` is HMAC-SHA-256(key, "person\x1f" + source + "\x1f" + local id of the
//! record that first introduced the person), its first 8 bytes read big-endian and
//! shifted right by one (a positive 63-bit integer). Surrogate keys of events
//! (`activity_id`, `referral_id`) are made the same way from (source, source id), so a
//! condition in a later batch finds the spell of an earlier one without a lookup, and
//! nobody without the key can compute a pseudonym from a local id or guess one id from
//! another.
//!
//! The key is 32 random bytes generated on first use and kept only in the vault folder
//! (`vault/pseudonym.key`, mode 0600). Whoever holds the vault can re-identify; the lake
//! alone cannot. Losing the key does not lose data (the vault maps every source identity
//! to its `person_id`), but new batches could no longer give the same ids to the same
//! events — so the key travels with the vault in every new generation.

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::IngestError;

/// File name of the key inside the vault folder.
pub const KEY_FILE: &str = "pseudonym.key";

/// The pseudonymisation key.
#[derive(Clone)]
pub struct Key([u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(…)") // never print the key
    }
}

impl Key {
    /// A key from bytes (tests).
    pub fn from_bytes(b: [u8; 32]) -> Key {
        Key(b)
    }

    /// Read the key from `vault_dir`, or make a new random one if there is none.
    /// Returns the key and whether it is new.
    pub fn load_or_create(vault_dir: Option<&Path>) -> Result<(Key, bool), IngestError> {
        if let Some(dir) = vault_dir {
            let p = dir.join(KEY_FILE);
            if p.exists() {
                let text = std::fs::read_to_string(&p).map_err(|e| IngestError::io(&p, e))?;
                let bytes = hex_decode(text.trim()).ok_or_else(|| IngestError::Vault {
                    message: format!("{} is not a 64-digit hex key", p.display()),
                })?;
                return Ok((Key(bytes), false));
            }
        }
        let mut b = [0u8; 32];
        let urandom = Path::new("/dev/urandom");
        let mut f = std::fs::File::open(urandom).map_err(|e| IngestError::io(urandom, e))?;
        std::io::Read::read_exact(&mut f, &mut b).map_err(|e| IngestError::io(urandom, e))?;
        Ok((Key(b), true))
    }

    /// Write the key into a (new) vault folder, owner-only.
    pub fn save(&self, vault_dir: &Path) -> Result<(), IngestError> {
        let p = vault_dir.join(KEY_FILE);
        let _ = std::fs::remove_file(&p);
        let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(&p, hex + "\n").map_err(|e| IngestError::io(&p, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| IngestError::io(&p, e))?;
        }
        Ok(())
    }

    /// A positive 63-bit keyed hash of the parts (joined by the unit separator).
    pub fn id(&self, parts: &[&str]) -> i64 {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                m.update(&[0x1f]);
            }
            m.update(p.as_bytes());
        }
        let d = m.finalize().into_bytes();
        let v = u64::from_be_bytes(d[..8].try_into().expect("8 bytes")) >> 1;
        v.max(1) as i64
    }

    /// The pseudonym of the person first introduced by (source, local id).
    pub fn person(&self, source: &str, source_person: &str) -> i64 {
        self.id(&["person", source, source_person])
    }

    /// The surrogate key of an event record (`activity`, `referral`).
    pub fn surrogate(&self, kind: &str, source: &str, source_id: &str) -> i64 {
        self.id(&[kind, source, source_id])
    }
}

fn hex_decode(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_keyed_positive_and_stable() {
        let k1 = Key::from_bytes([1; 32]);
        let k2 = Key::from_bytes([2; 32]);
        let a = k1.person("gp", "P1");
        assert!(a > 0);
        assert_eq!(a, k1.person("gp", "P1"));
        assert_ne!(a, k2.person("gp", "P1"), "another key, another pseudonym");
        assert_ne!(a, k1.person("gp", "P2"));
        assert_ne!(k1.person("gp", "P1"), k1.surrogate("person", "gp", "P1x"));
    }

    #[test]
    fn key_round_trips_and_is_owner_only() {
        let d = tempfile::tempdir().unwrap();
        let (k, new) = Key::load_or_create(Some(d.path())).unwrap();
        assert!(new);
        k.save(d.path()).unwrap();
        let (k2, new2) = Key::load_or_create(Some(d.path())).unwrap();
        assert!(!new2);
        assert_eq!(k.person("a", "b"), k2.person("a", "b"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(d.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(m & 0o777, 0o600);
        }
        assert_eq!(format!("{k:?}"), "Key(…)");
    }
}
