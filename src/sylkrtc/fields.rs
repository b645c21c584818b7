//! Typed access to a request's JSON fields, with SylkServer's leniency: unknown keys are
//! ignored and `null` counts as absent for optional fields (spec section 4.3).

use serde_json::{Map, Value};

use super::aor::Aor;
use super::request::RequestError;

/// The fields of one request object, named for error messages.
pub(crate) struct Fields<'a> {
    pub request: &'static str,
    pub map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// The value of `name` unless it is absent or `null`.
    fn get(&self, name: &'static str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    fn missing(&self, field: &'static str) -> RequestError {
        RequestError::MissingField {
            request: self.request,
            field,
        }
    }

    /// A mandatory string.
    pub fn str(&self, name: &'static str) -> Result<&'a str, RequestError> {
        self.opt_str(name)?.ok_or_else(|| self.missing(name))
    }

    /// An optional string.
    pub fn opt_str(&self, name: &'static str) -> Result<Option<&'a str>, RequestError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(invalid(name, other, "a string")),
        }
    }

    /// A mandatory string of at least one character.
    pub fn non_empty_str(&self, name: &'static str) -> Result<&'a str, RequestError> {
        let s = self.str(name)?;
        if s.is_empty() {
            return Err(invalid(name, &Value::from(s), "a non-empty string"));
        }
        Ok(s)
    }

    /// A mandatory address-of-record, normalised to `user@domain`.
    pub fn aor(&self, name: &'static str) -> Result<Aor, RequestError> {
        let s = self.str(name)?;
        Aor::parse(s).map_err(RequestError::InvalidUri)
    }

    /// A mandatory boolean.
    pub fn bool(&self, name: &'static str) -> Result<bool, RequestError> {
        self.opt_bool(name)?.ok_or_else(|| self.missing(name))
    }

    /// An optional boolean.
    pub fn opt_bool(&self, name: &'static str) -> Result<Option<bool>, RequestError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(invalid(name, other, "a boolean")),
        }
    }

    /// An optional non-negative integer.
    pub fn opt_u64(&self, name: &'static str) -> Result<Option<u64>, RequestError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| invalid(name, v, "a non-negative integer")),
        }
    }

    /// A mandatory string that must be one of `allowed`.
    pub fn one_of(
        &self,
        name: &'static str,
        allowed: &'static [&'static str],
    ) -> Result<&'static str, RequestError> {
        let s = self.str(name)?;
        allowed
            .iter()
            .copied()
            .find(|a| *a == s)
            .ok_or_else(|| RequestError::NotAllowed {
                field: name,
                value: s.to_owned(),
                allowed,
            })
    }

    /// A mandatory list, each element checked by `each`.
    pub fn list<T>(
        &self,
        name: &'static str,
        each: impl Fn(&'a Value) -> Result<T, RequestError>,
    ) -> Result<Vec<T>, RequestError> {
        self.opt_list(name, each)?.ok_or_else(|| self.missing(name))
    }

    /// An optional list, each element checked by `each`.
    pub fn opt_list<T>(
        &self,
        name: &'static str,
        each: impl Fn(&'a Value) -> Result<T, RequestError>,
    ) -> Result<Option<Vec<T>>, RequestError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items.iter().map(each).collect::<Result<_, _>>().map(Some),
            Some(other) => Err(invalid(name, other, "a list")),
        }
    }

    /// A mandatory JSON object, returned as fields of a nested structure.
    pub fn object(&self, name: &'static str) -> Result<Fields<'a>, RequestError> {
        match self.get(name) {
            None => Err(self.missing(name)),
            Some(Value::Object(map)) => Ok(Fields {
                request: self.request,
                map,
            }),
            Some(other) => Err(invalid(name, other, "an object")),
        }
    }
}

/// An "ill-typed field" error with the offending value shown compactly, like SylkServer's
/// `Invalid value for 'sdp' property: 5`.
pub(crate) fn invalid(field: &'static str, value: &Value, expected: &'static str) -> RequestError {
    let mut shown = value.to_string();
    if shown.len() > 64 {
        let mut cut = 61;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
        shown.push_str("...");
    }
    RequestError::InvalidField {
        field,
        value: shown,
        expected,
    }
}
