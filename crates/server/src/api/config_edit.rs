//! setServerConfig: `section.key=value` strings applied to a [`Config`], validated as
//! a whole, and written back into the operator's file with `toml_edit` (which keeps
//! the file's comments and layout).
//!
//! The API secret must not be a way to run programs or move trust: keys that name a
//! program, its arguments, a path, a CA file or a listen address are refused unless
//! the file itself sets `api.allow_unsafe_config = true` ([`UNSAFE_KEYS`]), and that
//! switch can never be set over the API. The write-back replaces the file's target
//! (through a symlink) keeping its mode and owner, and refuses when it cannot read
//! the file rather than write one made of defaults.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::config::Config;

/// Keys setServerConfig refuses unless `api.allow_unsafe_config` is on: a program
/// (`transcode.ffmpeg`), what it is given (`encoder`, `preset`, `extra_args`), where
/// files go (`data_dir`), whom TLS trusts (`proxy.tls_ca_file`) or what it presents
/// (`tls.cert`, `tls.key`), and where the server listens.
pub(super) const UNSAFE_KEYS: &[&str] = &[
    "data_dir",
    "rtmp.listen",
    "http.listen",
    "rtmp.tls_listen",
    "http.tls_listen",
    "tls.cert",
    "tls.key",
    "proxy.tls_ca_file",
    "transcode.ffmpeg",
    "transcode.encoder",
    "transcode.preset",
    "transcode.extra_args",
];

/// Keys whose new value takes effect at once; every other key is stored (and shown
/// by getServerConfig) but is read only at start-up.
pub(super) fn applies_live(key: &str) -> bool {
    key.starts_with("record.") || key.starts_with("api.")
}

/// Applies `changes` to a copy of `current`. Errors name the offending key; on
/// error nothing is applied. Returns the new config and the keys whose value changed.
pub(super) fn apply(
    current: &Config,
    changes: &[(String, String)],
) -> Result<(Config, Vec<String>), String> {
    let mut root = toml::Value::try_from(current).map_err(|e| e.to_string())?;
    let mut changed = Vec::new();
    for (key, _) in changes {
        if key == "api.allow_unsafe_config" {
            return Err(format!("{key} can only be set in the config file"));
        }
        if UNSAFE_KEYS.contains(&key.as_str()) && !current.api.allow_unsafe_config {
            return Err(format!(
                "{key} names a program, its arguments, a path, trust or an address: \
                 refused over the API unless the config file sets api.allow_unsafe_config = true"
            ));
        }
    }
    for (key, text) in changes {
        let slot = lookup(&mut root, key).ok_or_else(|| format!("unknown config key: {key}"))?;
        let value = convert(slot, text).map_err(|e| format!("bad value for {key}: {e}"))?;
        if *slot != value {
            *slot = value;
            changed.push(key.clone());
        }
    }
    let config: Config = root
        .try_into()
        .map_err(|e: toml::de::Error| format!("invalid config: {e}"))?;
    config.validate().map_err(|e| e.to_string())?;
    if changes
        .iter()
        .any(|(k, v)| k == "api.secret" && v.trim().is_empty())
    {
        return Err("bad value for api.secret: it cannot be made empty over the API".into());
    }
    Ok((config, changed))
}

fn lookup<'a>(root: &'a mut toml::Value, key: &str) -> Option<&'a mut toml::Value> {
    let mut v = root;
    for part in key.split('.') {
        v = v.as_table_mut()?.get_mut(part)?;
    }
    (!v.is_table()).then_some(v)
}

/// Parses `text` as a value of the same type as `old`.
fn convert(old: &toml::Value, text: &str) -> Result<toml::Value, String> {
    let t = text.trim();
    Ok(match old {
        toml::Value::String(_) => toml::Value::String(text.to_owned()),
        toml::Value::Integer(_) => toml::Value::Integer(
            t.parse::<i64>()
                .map_err(|_| format!("{t:?} is not an integer"))?,
        ),
        toml::Value::Float(_) => toml::Value::Float(
            t.parse::<f64>()
                .map_err(|_| format!("{t:?} is not a number"))?,
        ),
        toml::Value::Boolean(_) => toml::Value::Boolean(match t {
            "1" | "true" | "yes" => true,
            "0" | "false" | "no" => false,
            _ => return Err(format!("{t:?} is not a boolean (1/0/true/false)")),
        }),
        toml::Value::Array(_) => {
            if t.starts_with('[') {
                let doc: toml::Table =
                    toml::from_str(&format!("v = {t}")).map_err(|e| e.to_string())?;
                doc.get("v").cloned().ok_or("not an array")?
            } else {
                toml::Value::Array(
                    t.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.to_owned()))
                        .collect(),
                )
            }
        }
        _ => return Err("this key cannot be set over the API".into()),
    })
}

/// Writes `keys` of `config` into the TOML file at `path`, keeping everything else
/// of the file as it is (atomically: a temporary file, then a rename).
pub(super) fn write_back(path: &Path, config: &Config, keys: &[String]) -> Result<(), String> {
    // Through a symlink to the file it names, so the link stays a link.
    let target = std::fs::canonicalize(path)
        .map_err(|e| format!("cannot resolve {}: {e}; not saved", path.display()))?;
    let meta = std::fs::metadata(&target)
        .map_err(|e| format!("cannot read {}: {e}; not saved", target.display()))?;
    // A file we cannot read is not replaced by one made of defaults.
    let text = std::fs::read_to_string(&target)
        .map_err(|e| format!("cannot read {}: {e}; not saved", target.display()))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("cannot parse {}: {e}", path.display()))?;
    let mut root = toml::Value::try_from(config).map_err(|e| e.to_string())?;
    for key in keys {
        let Some(v) = lookup(&mut root, key) else {
            continue;
        };
        let parts: Vec<&str> = key.split('.').collect();
        let (last, sections) = parts.split_last().ok_or("empty key")?;
        let mut table = doc.as_table_mut();
        for s in sections {
            let entry = table
                .entry(s)
                .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
            table = entry
                .as_table_mut()
                .ok_or_else(|| format!("{s} is not a table in {}", path.display()))?;
        }
        let mut new = to_edit(v)?;
        match table.get_mut(last) {
            // In place: the key, its comments and the value's trailing comment stay.
            Some(item) => {
                if let Some(old) = item.as_value() {
                    *new.decor_mut() = old.decor().clone();
                }
                *item = toml_edit::Item::Value(new);
            }
            None => {
                table.insert(last, toml_edit::Item::Value(new));
            }
        }
    }
    // The same mode and owner as the file it replaces (an operator's 0640 root:ferrocast
    // stays so), whole or not at all.
    crate::files::write_atomic(
        &target,
        doc.to_string().as_bytes(),
        meta.permissions().mode() & 0o7777,
    )
    .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    std::os::unix::fs::chown(&target, Some(meta.uid()), Some(meta.gid()))
        .map_err(|e| format!("cannot keep the owner of {}: {e}", target.display()))
}

fn to_edit(v: &toml::Value) -> Result<toml_edit::Value, String> {
    Ok(match v {
        toml::Value::String(s) => s.as_str().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => (*f).into(),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Array(a) => {
            let mut arr = toml_edit::Array::new();
            for x in a {
                arr.push(to_edit(x)?);
            }
            arr.into()
        }
        _ => return Err("unsupported value".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(c: &Config, kv: &[(&str, &str)]) -> Result<(Config, Vec<String>), String> {
        let v: Vec<_> = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        apply(c, &v)
    }

    #[test]
    fn typed_values_and_changed_keys() {
        let c = Config::default();
        let (n, changed) = set(
            &c,
            &[
                ("record.max_second", "60"),
                ("hls.enabled", "0"),
                ("record.auto_mp4_apps", "live, cams"),
                ("rtmp.chunk_size", &c.rtmp.chunk_size.to_string()),
            ],
        )
        .unwrap();
        assert_eq!(n.record.max_second, 60);
        assert!(!n.hls.enabled);
        assert_eq!(n.record.auto_mp4_apps, vec!["live", "cams"]);
        assert_eq!(
            changed,
            vec!["record.max_second", "hls.enabled", "record.auto_mp4_apps"]
        );
        let (n, _) = set(&c, &[("record.auto_hls_apps", "[\"a\", \"b\"]")]).unwrap();
        assert_eq!(n.record.auto_hls_apps, vec!["a", "b"]);
    }

    #[test]
    fn bad_keys_and_values_are_named() {
        let c = Config::default();
        let e = set(&c, &[("record.max_secnd", "60")]).unwrap_err();
        assert!(e.contains("record.max_secnd"), "{e}");
        let e = set(&c, &[("record", "1")]).unwrap_err();
        assert!(e.contains("unknown config key: record"), "{e}");
        let e = set(&c, &[("record.max_second", "soon")]).unwrap_err();
        assert!(e.contains("record.max_second"), "{e}");
        let e = set(&c, &[("record.max_second", "1")]).unwrap_err();
        assert!(e.contains("record.max_second"), "{e}");
        let e = set(&c, &[("rtmp.listen", "nowhere")]).unwrap_err();
        assert!(e.contains("rtmp.listen"), "{e}");
        let e = set(&c, &[("api.secret", "")]).unwrap_err();
        assert!(e.contains("api.secret"), "{e}");
    }

    #[test]
    fn write_back_keeps_comments() {
        let dir = std::env::temp_dir().join(format!("ferrocast-cfgedit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.toml");
        std::fs::write(&path, "# mine\n[hls]\n# keep\nenabled = true\n").unwrap();
        let c = Config::default();
        let (n, changed) = set(
            &c,
            &[("hls.enabled", "false"), ("record.max_second", "120")],
        )
        .unwrap();
        write_back(&path, &n, &changed).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# mine") && text.contains("# keep"), "{text}");
        let back = Config::load(Some(&path)).unwrap();
        assert!(!back.hls.enabled);
        assert_eq!(back.record.max_second, 120);
        std::fs::remove_dir_all(&dir).ok();
    }
}
