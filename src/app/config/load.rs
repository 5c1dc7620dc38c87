//! From text and environment to a typed [`Config`], reporting every problem at once.
//!
//! The file is read by the `config` crate into a value tree. Environment overrides are laid
//! over it here, one path segment per `__`: `PRESENCE_BRIDGE__SERVER__LISTEN` sets
//! `server.listen`, and a segment of digits indexes an array, so
//! `PRESENCE_BRIDGE__CONNECTORS__0__AUTH__CLIENT_SECRET` sets the `client_secret` of the first
//! `[[connectors]]` entry's `auth` table. A value that reads as a number or boolean is taken
//! as one unless the key wants a string; one starting with `[` is read as a JSON array.
//!
//! Each top-level section and each entry of an array section is deserialized on its own, and
//! within one, a key that does not deserialize is set aside and the rest tried again, so
//! mistakes in several places are all reported, each with its key path and, when it came from
//! the environment, the variable's name.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{Config, ENV_PREFIX};
use crate::config::ConfigErrors;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Seg {
    Key(String),
    Index(usize),
}

type KeyPath = Vec<Seg>;

fn show(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The environment variable that set a value, and whether its type was guessed.
#[derive(Debug, Clone)]
struct EnvOrigin {
    var: String,
    raw: String,
    typed: bool,
}

/// The merged value tree and where environment values came from.
struct Layered {
    tree: Value,
    env: BTreeMap<KeyPath, EnvOrigin>,
}

/// Most keys one section may have set aside before the rest is given up on.
const MAX_ROUNDS: usize = 64;

/// Parses `text` and `env` into a [`Config`], or every problem found.
pub(super) fn parse(
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, super::ConfigError> {
    let file = config::Config::builder()
        .add_source(config::File::from_str(text, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize::<Value>())
        .map_err(|e| super::ConfigError::Parse(e.to_string().replace('\n', " ")))?;
    let mut errs = ConfigErrors::default();
    let mut layered = Layered {
        tree: if file.is_null() {
            Value::Object(Map::new())
        } else {
            file
        },
        env: BTreeMap::new(),
    };
    let prefix = format!("{ENV_PREFIX}__");
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .collect();
    vars.sort();
    for (var, raw) in vars {
        let path = key_path(&var[prefix.len()..]);
        if path
            .iter()
            .any(|s| matches!(s, Seg::Key(k) if k.is_empty()))
            || path.is_empty()
        {
            errs.push(
                var.clone(),
                "is not a configuration key (empty path segment)",
            );
            continue;
        }
        // A key that holds a string in the file, or whose name says it is text (a secret, a
        // name, an id, a URL), keeps the value as given: "12345" is a valid token.
        let wants_text = matches!(get_mut(&mut layered.tree, &path), Some(Value::String(_)))
            || path
                .last()
                .is_some_and(|s| matches!(s, Seg::Key(k) if names_text(k)));
        let value = if wants_text {
            Value::String(raw.clone())
        } else {
            typed_value(&raw)
        };
        if let Err(why) = set(&mut layered.tree, &path, value) {
            errs.push(format!("{} (environment variable {var})", show(&path)), why);
            continue;
        }
        layered.env.insert(
            path,
            EnvOrigin {
                var,
                raw,
                typed: !wants_text,
            },
        );
    }
    check_units(&mut layered, &mut errs);
    if !errs.is_empty() {
        return Err(super::ConfigError::Invalid(errs));
    }
    serde_json::from_value::<Config>(layered.tree)
        .map_err(|e| super::ConfigError::Parse(e.to_string()))
}

/// Names the environment variable behind `path`, for messages about a validated value.
pub(super) fn env_var_for(
    env: impl IntoIterator<Item = (String, String)>,
    path: &str,
) -> Option<String> {
    let prefix = format!("{ENV_PREFIX}__");
    env.into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with(&prefix))
        .find(|k| show(&key_path(&k[prefix.len()..])) == path)
}

/// The key path a variable name (after the prefix) sets: one segment per `__`, digits index
/// an array.
fn key_path(name: &str) -> KeyPath {
    name.split("__")
        .map(|s| match s.parse::<usize>() {
            Ok(i) => Seg::Index(i),
            Err(_) => Seg::Key(s.to_ascii_lowercase()),
        })
        .collect()
}

/// Keys that always hold text, whatever their value looks like.
fn names_text(key: &str) -> bool {
    const SUFFIXES: [&str; 12] = [
        "secret", "token", "password", "value", "key", "id", "name", "url", "file", "sid",
        "username", "region",
    ];
    SUFFIXES
        .iter()
        .any(|s| key == *s || key.ends_with(&format!("_{s}")))
}

/// A string from the environment as the value it most likely means.
fn typed_value(raw: &str) -> Value {
    let t = raw.trim();
    if t == "true" || t == "false" {
        return Value::Bool(t == "true");
    }
    if let Ok(i) = t.parse::<i64>() {
        return Value::from(i);
    }
    if t.contains('.')
        && let Ok(f) = t.parse::<f64>()
        && f.is_finite()
    {
        return Value::from(f);
    }
    if t.starts_with('[')
        && let Ok(v @ Value::Array(_)) = serde_json::from_str::<Value>(t)
    {
        return v;
    }
    Value::String(raw.to_owned())
}

/// Sets `path` in `tree`, creating tables and extending arrays as needed.
fn set(tree: &mut Value, path: &[Seg], value: Value) -> Result<(), String> {
    let mut node = tree;
    for (i, seg) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        match seg {
            Seg::Key(k) => {
                if node.is_null() {
                    *node = Value::Object(Map::new());
                }
                let Value::Object(map) = node else {
                    return Err(format!("{} is not a table", show(&path[..i])));
                };
                if last {
                    map.insert(k.clone(), value);
                    return Ok(());
                }
                node = map.entry(k.clone()).or_insert(Value::Null);
            }
            Seg::Index(idx) => {
                if node.is_null() {
                    *node = Value::Array(Vec::new());
                }
                let Value::Array(items) = node else {
                    return Err(format!("{} is not an array", show(&path[..i])));
                };
                if *idx > items.len() {
                    return Err(format!(
                        "index {idx} skips entries: {} has {} entries, so the next one is {}",
                        show(&path[..i]),
                        items.len(),
                        items.len()
                    ));
                }
                if *idx == items.len() {
                    items.push(Value::Null);
                }
                if last {
                    items[*idx] = value;
                    return Ok(());
                }
                node = &mut items[*idx];
            }
        }
    }
    Err("empty key".into())
}

fn get_mut<'a>(tree: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    let mut node = tree;
    for seg in path {
        node = match (seg, node) {
            (Seg::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(node)
}

/// Removes `path` from `tree`; an array entry becomes null (later indexes keep their place).
fn remove(tree: &mut Value, path: &[Seg]) -> bool {
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    match (last, get_mut(tree, parent)) {
        (Seg::Key(k), Some(Value::Object(m))) => m.remove(k).is_some(),
        _ => false,
    }
}

/// Deserializes each unit (a top-level section, or one entry of an array section) on its own,
/// collecting every problem.
fn check_units(layered: &mut Layered, errs: &mut ConfigErrors) {
    let Value::Object(top) = &layered.tree else {
        errs.push("", "the configuration must be a table of sections");
        return;
    };
    let mut units: Vec<KeyPath> = Vec::new();
    for (k, v) in top {
        match v {
            Value::Array(items) if is_array_section(k) => {
                units.extend((0..items.len()).map(|i| vec![Seg::Key(k.clone()), Seg::Index(i)]))
            }
            _ => units.push(vec![Seg::Key(k.clone())]),
        }
    }
    for unit in units {
        check_unit(layered, &unit, errs);
    }
}

fn is_array_section(key: &str) -> bool {
    matches!(
        key,
        "connectors" | "teams_to_cc" | "cc_to_teams" | "dynamics" | "alerts"
    )
}

/// A tree holding only the value at `unit`, placed where it belongs: `{section: value}` or
/// `{section: [value]}`.
fn isolate(tree: &Value, unit: &[Seg]) -> Option<Value> {
    let mut node = tree;
    for seg in unit {
        node = match (seg, node) {
            (Seg::Key(k), Value::Object(m)) => m.get(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    let Seg::Key(section) = &unit[0] else {
        return None;
    };
    let inner = if unit.len() == 2 {
        Value::Array(vec![node.clone()])
    } else {
        node.clone()
    };
    let mut m = Map::new();
    m.insert(section.clone(), inner);
    Some(Value::Object(m))
}

/// Maps a path in the isolated tree back to the full tree (the array index of the unit).
fn restore_index(path: KeyPath, unit: &[Seg]) -> KeyPath {
    if unit.len() == 2 && path.len() >= 2 {
        let mut p = path;
        p[1] = unit[1].clone();
        p
    } else {
        path
    }
}

fn check_unit(layered: &mut Layered, unit: &[Seg], errs: &mut ConfigErrors) {
    let mut set_aside: Vec<KeyPath> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let Some(isolated) = isolate(&layered.tree, unit) else {
            return;
        };
        let err = match serde_path_to_error::deserialize::<_, Config>(&isolated) {
            Ok(_) => return,
            Err(e) => e,
        };
        let local = segments(err.path());
        let path = restore_index(local, unit);
        let message = err.inner().to_string();
        // A value from the environment whose type was guessed: try it as the string it was.
        if let Some(origin) = layered.env.get_mut(&path)
            && origin.typed
        {
            origin.typed = false;
            let raw = Value::String(origin.raw.clone());
            if let Some(slot) = get_mut(&mut layered.tree, &path) {
                *slot = raw;
                continue;
            }
        }
        // The key set aside last was required: nothing more can be learned from this unit.
        if let Some(field) = missing_field(&message)
            && set_aside.iter().any(|p| {
                p.len() == path.len() + 1
                    && p.starts_with(&path)
                    && p.last() == Some(&Seg::Key(field.clone()))
            })
        {
            return;
        }
        errs.push(describe(&path, &layered.env), message);
        if path.len() <= unit.len() || !remove(&mut layered.tree, &path) {
            // The whole unit is wrong (its kind, its shape): set it aside entirely.
            if let Some(slot) = get_mut(&mut layered.tree, unit) {
                *slot = if unit.len() == 2 {
                    Value::Null
                } else {
                    Value::Object(Map::new())
                };
            }
            return;
        }
        set_aside.push(path);
    }
}

fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest[..rest.find('`')?].to_owned())
}

/// `server.listen`, with the environment variable that set it when one did.
fn describe(path: &[Seg], env: &BTreeMap<KeyPath, EnvOrigin>) -> String {
    let shown = if path.is_empty() {
        "(top level)".to_owned()
    } else {
        show(path)
    };
    if let Some(o) = env.get(path) {
        return format!("{shown} (environment variable {})", o.var);
    }
    let within: Vec<&str> = env
        .iter()
        .filter(|(p, _)| p.starts_with(path) && !path.is_empty())
        .map(|(_, o)| o.var.as_str())
        .collect();
    if within.is_empty() {
        shown
    } else {
        format!("{shown} (with environment variable {})", within.join(", "))
    }
}

fn segments(path: &serde_path_to_error::Path) -> KeyPath {
    path.iter()
        .filter_map(|s| match s {
            serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
            serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
            serde_path_to_error::Segment::Enum { variant } => Some(Seg::Key(variant.clone())),
            serde_path_to_error::Segment::Unknown => None,
        })
        .collect()
}
