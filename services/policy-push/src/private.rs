//! What this process writes stays readable by its own user only, and the key of the
//! subjects' pseudonyms.
//!
//! - [`restrict_new_files`]: the process umask is `077` from the start of `main`, so every
//!   file it creates (the SQLite database and its `-wal` and `-shm`, the sandbox record,
//!   logs, key files) is `0600` and every directory `0700`, whoever creates it (SQLite
//!   included).
//! - [`data_dir`]: creates the data dir `0700`; one left by an older version is closed
//!   (`0700`, and the files directly in it `0600`).
//! - [`pseudonymizer`]: the pseudonym key (`POLICY_PUSH_PSEUDONYM_KEY`), or, for the
//!   embedded default only, `<data dir>/pseudonym.key`, generated at the first start.

use anyhow::Context;
use domain::pseudonym::{Pseudonymizer, MIN_KEY_BYTES};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The file of the embedded default's generated pseudonym key, in the data dir.
pub const KEY_FILE: &str = "pseudonym.key";

/// Files this process creates from now on are private to its user (umask `077`).
pub fn restrict_new_files() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Creates the data dir (`0700`), or closes one that exists: the dir `0700` and the
/// regular files directly in it `0600`.
pub fn data_dir(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create data dir {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make the data dir {} private", dir.display()))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot make {} private", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The pseudonymizer of this process: the configured key, else the data dir's key file
/// (generated, `0600`, at the first start). `ServeConfig` has already refused a
/// production configuration without a key.
pub fn pseudonymizer(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Pseudonymizer> {
    if let Some(text) = configured {
        return Pseudonymizer::parse(text).context("POLICY_PUSH_PSEUDONYM_KEY");
    }
    let path = data_dir.join(KEY_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            Pseudonymizer::parse(&text).with_context(|| format!("pseudonym key {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; MIN_KEY_BYTES] = rand::random();
            let text = hex::encode(key);
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("cannot create the pseudonym key {}", path.display()))?;
            f.write_all(format!("{text}\n").as_bytes())?;
            f.sync_all()?;
            tracing::info!(
                file = %path.display(),
                "generated the pseudonym key of this data dir (keep it with the database; \
                 production sets POLICY_PUSH_PSEUDONYM_KEY)"
            );
            Ok(Pseudonymizer::from_key(&key)?)
        }
        Err(e) => {
            Err(e).with_context(|| format!("cannot read the pseudonym key {}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_key_is_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        data_dir(&data).unwrap();
        assert_eq!(
            fs::metadata(&data).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let first = pseudonymizer(None, &data).unwrap();
        let file = data.join(KEY_FILE);
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // The next start reads the same key.
        let again = pseudonymizer(None, &data).unwrap();
        assert_eq!(
            first.subject("310115199001010011"),
            again.subject("310115199001010011")
        );
        // A configured key wins over the file.
        let configured = pseudonymizer(Some(&"ab".repeat(32)), &data).unwrap();
        assert_ne!(
            configured.subject("310115199001010011"),
            first.subject("310115199001010011")
        );
        assert!(pseudonymizer(Some("abcd"), &data).is_err());
    }

    #[test]
    fn an_open_data_dir_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("old");
        fs::create_dir(&data).unwrap();
        fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
        let db = data.join("policy-push.db");
        fs::write(&db, b"x").unwrap();
        fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).unwrap();
        data_dir(&data).unwrap();
        assert_eq!(
            fs::metadata(&data).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(
            fs::metadata(&db).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
