//! Reading a JSON tree with its path: every value carries where it was
//! found (`db[0].data.posts[3].title`), so a broken export gets a message
//! naming the exact place.
//!
//! Owns `At` (a value and its path) and `Broken` (an error naming a path).
//! Invariant: a missing key and JSON `null` are the same ("absent"); a
//! present value of the wrong type is always an error, never a default.

use serde_json::Value;

/// The export is not what Ghost writes: the message names where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken(pub String);

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

static NULL: Value = Value::Null;

/// A JSON value and the path it was found at.
#[derive(Clone)]
pub struct At<'a> {
    pub value: &'a Value,
    pub path: String,
}

impl<'a> At<'a> {
    pub fn root(value: &'a Value, name: &str) -> At<'a> {
        At {
            value,
            path: name.to_string(),
        }
    }

    /// The member `key` of an object (absent when missing, or when this
    /// is not an object: `expect_object` is where that is an error).
    pub fn get(&self, key: &str) -> At<'a> {
        At {
            value: self.value.get(key).unwrap_or(&NULL),
            path: if self.path.is_empty() {
                key.to_string()
            } else {
                format!("{}.{key}", self.path)
            },
        }
    }

    pub fn is_absent(&self) -> bool {
        self.value.is_null()
    }

    pub fn broken(&self, what: &str) -> Broken {
        Broken(format!("{}: {what}", self.path))
    }

    fn wrong(&self, expected: &str) -> Broken {
        self.broken(&format!("expected {expected}, found {}", kind(self.value)))
    }

    pub fn expect_object(&self) -> Result<(), Broken> {
        if self.value.is_object() {
            Ok(())
        } else {
            Err(self.wrong("an object"))
        }
    }

    /// The elements of an array; absent is an empty array.
    pub fn items(&self) -> Result<Vec<At<'a>>, Broken> {
        match self.value {
            Value::Null => Ok(Vec::new()),
            Value::Array(a) => Ok(a
                .iter()
                .enumerate()
                .map(|(i, v)| At {
                    value: v,
                    path: format!("{}[{i}]", self.path),
                })
                .collect()),
            _ => Err(self.wrong("an array")),
        }
    }

    /// A string, or `None` when absent. Ghost writes ids as strings
    /// (ObjectIds) but hand-made exports use numbers, as its docs do: a
    /// number is accepted and written in decimal.
    pub fn opt_str(&self) -> Result<Option<String>, Broken> {
        match self.value {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            Value::Number(n) => Ok(Some(n.to_string())),
            _ => Err(self.wrong("a string")),
        }
    }

    /// A non-empty string, or `None` when absent or empty.
    pub fn text(&self) -> Result<Option<String>, Broken> {
        Ok(self.opt_str()?.filter(|s| !s.trim().is_empty()))
    }

    pub fn req_str(&self) -> Result<String, Broken> {
        self.opt_str()?.ok_or_else(|| self.broken("missing"))
    }

    /// A boolean; Ghost 1 wrote 0/1 for booleans, so numbers count too.
    pub fn flag(&self) -> Result<bool, Broken> {
        match self.value {
            Value::Null => Ok(false),
            Value::Bool(b) => Ok(*b),
            Value::Number(n) => Ok(n.as_f64().unwrap_or(0.0) != 0.0),
            Value::String(s) => Ok(s == "true" || s == "1"),
            _ => Err(self.wrong("a boolean")),
        }
    }
}

/// What a JSON value is, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_name_the_place() {
        let v = json!({"a": [{"b": 1}, {"b": true}]});
        let root = At::root(&v, "");
        let items = root.get("a").items().unwrap();
        assert_eq!(items[0].get("b").opt_str().unwrap().as_deref(), Some("1"));
        let err = items[1].get("b").opt_str().unwrap_err();
        assert_eq!(err.0, "a[1].b: expected a string, found a boolean");
        assert_eq!(root.get("x").items().unwrap().len(), 0);
        assert_eq!(
            root.get("a").get("c").req_str().unwrap_err().0,
            "a.c: missing"
        );
        assert_eq!(
            items[0].items().err().map(|e| e.0),
            Some("a[0]: expected an array, found an object".to_string())
        );
    }
}
