//! The API secret: where it comes from when the operator configured none, and how a
//! caller's secret is checked.
//!
//! ZLMediaKit ships a well-known default secret, which leaves every server that
//! keeps it open to anyone. Here an unconfigured `api.secret` means: use the secret
//! in `{data_dir}/api_secret`, creating it on first start from the operating
//! system's CSPRNG (128 bits, 32 hex digits), mode 0600. The log names the file,
//! never the value, so a log shipped elsewhere does not carry it; the same secret
//! survives restarts, so scripts keep working.
//!
//! A caller's secret is compared in constant time (`config::values::secret_eq`).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The file under `data_dir` that holds the generated secret.
pub(super) const FILE_NAME: &str = "api_secret";

/// Shortest secret accepted from the file: a shorter one was not made by us.
const MIN_LEN: usize = 16;

/// The secret in `{data_dir}/api_secret`, made first if the file does not exist.
/// Returns the secret, the file's path, and whether it was made now.
pub(super) fn load_or_create(data_dir: &Path) -> io::Result<(String, PathBuf, bool)> {
    let path = data_dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let secret = text.trim().to_owned();
            if secret.len() < MIN_LEN || !secret.chars().all(|c| c.is_ascii_graphic()) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} does not hold a secret of at least {MIN_LEN} printable characters",
                        path.display()
                    ),
                ));
            }
            // Someone may have loosened it by hand; a secret readable by others is not one.
            let mode = std::fs::metadata(&path)?.permissions().mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok((secret, path, false))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir)?;
            let secret = generate()?;
            // 0600 from its creation, and never half-written (see `files`).
            crate::files::write_atomic(&path, format!("{secret}\n").as_bytes(), 0o600)?;
            Ok((secret, path, true))
        }
        Err(e) => Err(e),
    }
}

/// 128 bits from the operating system's CSPRNG, as 32 lower-case hex digits.
fn generate() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| io::Error::other(format!("no random bytes: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_with_mode_0600_then_reused() {
        let dir = std::env::temp_dir().join(format!("ferrocast-secret-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (s1, path, made) = load_or_create(&dir).unwrap();
        assert!(made);
        assert_eq!(s1.len(), 32);
        assert!(s1.chars().all(|c| c.is_ascii_hexdigit()), "{s1}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (s2, _, made) = load_or_create(&dir).unwrap();
        assert!(!made);
        assert_eq!(s1, s2, "the same secret after a restart");
        // A file loosened by hand is tightened again.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        load_or_create(&dir).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A file that holds no real secret is an error, not an open API.
        std::fs::write(&path, "  \n").unwrap();
        assert!(load_or_create(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn two_servers_never_share_a_generated_secret() {
        assert_ne!(generate().unwrap(), generate().unwrap());
    }
}
