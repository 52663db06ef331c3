//! Typed method params: each method declares a params struct (`#[derive(Deserialize)]`), and [`decode`] turns the
//! request's `params` into it, once, before the handler runs. Every violation is -32602 "Invalid parameters" with a
//! reason that names the member (`device is required`, `limit must be between 1 and 1000, got 0`, ...).
//!
//! The reasons come from a small serde `Deserializer` over the params object rather than from `serde_json`'s own
//! messages (`invalid type: integer `3`, expected a string`), which do not say which member was wrong. Rules:
//! - omitted or `null` params read as an empty object; an array or a scalar is `params must be an object`;
//! - a member set to `null` counts as absent; unknown members are ignored (a per-call `auth_token` rides along);
//! - a missing required member is `<key> is required`, a wrong JSON type `<key> must be a string` (an integer, a
//!   number, a boolean); value rules of the types below (`must not be empty`, ranges) are prefixed with the key;
//! - a method without params takes [`NoParams`], which ignores `params` whatever its shape.

use std::any::TypeId;
use std::fmt;
use std::ops::Deref;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::Call;
use crate::auth::Session;
use crate::error::{Error, Result};

/// Decode `params` into `P` (the one place params are turned into a method's struct).
pub fn decode<P: DeserializeOwned>(params: &Value) -> Result<P> {
    P::deserialize(Root(params)).map_err(|e| Error::InvalidParams(e.msg))
}

/// Whether a handler taking params of type `P` reads them: every type but [`NoParams`] does. [`method!`]
/// (crate::rpc::method) passes the handler itself so `P` is inferred from its signature.
pub fn reads_params<S, P: 'static>(_: fn(&S, P, &Call) -> Result<Value>) -> bool {
    TypeId::of::<P>() != TypeId::of::<NoParams>()
}

/// [`reads_params`] for a handler that also takes the session.
pub fn session_reads_params<S, P: 'static>(_: fn(&S, P, &Call, &mut Session) -> Result<Value>) -> bool {
    TypeId::of::<P>() != TypeId::of::<NoParams>()
}

/// Params of a method that takes none: whatever the client sent is ignored (as the Python service does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoParams;

impl<'de> Deserialize<'de> for NoParams {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_ignored_any(de::IgnoredAny).map(|_| NoParams)
    }
}

/// `{"device": "<camera id>"}`, the params of every method about one camera.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceParams {
    pub device: NonEmpty,
}

/// A string that is not empty or blank (`<key> must not be empty`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonEmpty(pub String);

impl Deref for NonEmpty {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().is_empty() {
            return Err(de::Error::custom("must not be empty"));
        }
        Ok(NonEmpty(s))
    }
}

/// An integer in `MIN..=MAX` (a float such as 1.5, a boolean or a string is `<key> must be an integer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int<const MIN: i64, const MAX: i64>(pub i64);

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Int<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<const MIN: i64, const MAX: i64>;
        impl<const MIN: i64, const MAX: i64> Visitor<'_> for V<MIN, MAX> {
            type Value = Int<MIN, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<Self::Value, E> {
                if (MIN..=MAX).contains(&n) {
                    Ok(Int(n))
                } else {
                    Err(E::custom(format!("must be between {MIN} and {MAX}, got {n}")))
                }
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<Self::Value, E> {
                match i64::try_from(n) {
                    Ok(n) => self.visit_i64(n),
                    Err(_) => Err(E::custom("must be an integer")),
                }
            }
        }
        d.deserialize_i64(V::<MIN, MAX>)
    }
}

/// A JSON number (integer or float; booleans and strings are `<key> must be a number`), with the value as the
/// client wrote it, for results that echo it (`5` stays `5`, `1.5` stays `1.5`).
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    pub value: f64,
    pub raw: Value,
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<Number, E> {
                Ok(Number { value: n as f64, raw: Value::from(n) })
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<Number, E> {
                Ok(Number { value: n as f64, raw: Value::from(n) })
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> std::result::Result<Number, E> {
                Ok(Number { value: n, raw: Value::from(n) })
            }
        }
        d.deserialize_f64(V)
    }
}

/// A member whose validation is decided later: decoding never fails on it, and the handler takes the error only if
/// it uses the member (e.g. `start_recording` reads the first duration key present and ignores the others).
#[derive(Debug, Clone, PartialEq)]
pub struct Deferred<T>(pub std::result::Result<T, String>);

impl<T> Deferred<T> {
    /// The value, or the -32602 it was decoded with.
    pub fn get(self) -> Result<T> {
        self.0.map_err(Error::InvalidParams)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Deferred<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Deferred(T::deserialize(d).map_err(|e| e.to_string())))
    }
}

/// A decoding error: the reason text, and whether it already names its member.
#[derive(Debug)]
pub struct DeError {
    msg: String,
    named: bool,
}

impl DeError {
    fn named(msg: String) -> DeError {
        DeError { msg, named: true }
    }

    /// Put the member's name in front of a reason that lacks it.
    fn within(self, key: &str) -> DeError {
        if self.named {
            self
        } else {
            DeError::named(format!("{key} {}", self.msg))
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError { msg: msg.to_string(), named: false }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::named(format!("{field} is required"))
    }
}

type De<T> = std::result::Result<T, DeError>;

/// The `params` value itself.
struct Root<'a>(&'a Value);

impl<'de> Deserializer<'de> for Root<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> De<V::Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        match self.0 {
            Value::Object(m) => visitor.visit_map(Members::new(m)),
            Value::Null => visitor.visit_map(Members::new(EMPTY.get_or_init(Map::new))),
            _ => Err(DeError::named("params must be an object".into())),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> De<V::Value> {
        visitor.visit_unit()
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> De<V::Value> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> De<V::Value> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        newtype_struct seq tuple tuple_struct map struct enum identifier
    }
}

/// The members of an object, `null` ones skipped; remembers the current key to name it in errors.
struct Members<'a> {
    iter: serde_json::map::Iter<'a>,
    current: Option<(&'a str, &'a Value)>,
}

impl<'a> Members<'a> {
    fn new(m: &'a Map<String, Value>) -> Members<'a> {
        Members { iter: m.iter(), current: None }
    }
}

impl<'de> MapAccess<'de> for Members<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> De<Option<K::Value>> {
        for (k, v) in self.iter.by_ref() {
            if v.is_null() {
                continue;
            }
            self.current = Some((k, v));
            return seed.deserialize(de::value::BorrowedStrDeserializer::new(k)).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> De<S::Value> {
        let (key, value) = self.current.take().ok_or_else(|| DeError::named("params: value without a key".into()))?;
        seed.deserialize(Member { key, value }).map_err(|e| e.within(key))
    }
}

/// One member's value. Type mismatches name the member; errors raised by the target type's visitor get the
/// member's name here too, so that [`Deferred`] keeps a complete reason.
struct Member<'a> {
    key: &'a str,
    value: &'a Value,
}

impl<'a> Member<'a> {
    fn wrong(&self, what: &str) -> DeError {
        DeError::named(format!("{} must be {what}", self.key))
    }

    fn named<T>(&self, r: De<T>) -> De<T> {
        r.map_err(|e| e.within(self.key))
    }

    fn integer(&self) -> Option<&'a serde_json::Number> {
        match self.value {
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(n),
            _ => None,
        }
    }
}

impl<'de> Deserializer<'de> for Member<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> De<V::Value> {
        let r = match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => visitor.visit_u64(u),
                (None, Some(i)) => visitor.visit_i64(i),
                _ => visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visitor.visit_seq(Items { key: self.key, iter: items.iter() }),
            Value::Object(m) => visitor.visit_map(Members::new(m)),
        };
        self.named(r)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> De<V::Value> {
        match self.value {
            Value::Bool(b) => self.named(visitor.visit_bool(*b)),
            _ => Err(self.wrong("a boolean")),
        }
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> De<V::Value> {
        let Some(n) = self.integer() else { return Err(self.wrong("an integer")) };
        let r = match n.as_i64() {
            Some(i) => visitor.visit_i64(i),
            None => visitor.visit_u64(n.as_u64().unwrap_or(u64::MAX)),
        };
        self.named(r)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> De<V::Value> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> De<V::Value> {
        match self.value {
            Value::Number(_) => self.deserialize_any(visitor),
            _ => Err(self.wrong("a number")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> De<V::Value> {
        match self.value {
            Value::String(s) => self.named(visitor.visit_borrowed_str(s)),
            _ => Err(self.wrong("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> De<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> De<V::Value> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> De<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> De<V::Value> {
        visitor.visit_unit()
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> De<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> De<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> De<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> De<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> De<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> De<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> De<V::Value> {
        self.deserialize_f64(visitor)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char bytes byte_buf unit unit_struct seq tuple tuple_struct map struct enum identifier
    }
}

/// The items of an array member (errors name the member they belong to).
struct Items<'a> {
    key: &'a str,
    iter: std::slice::Iter<'a, Value>,
}

impl<'de> SeqAccess<'de> for Items<'de> {
    type Error = DeError;

    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> De<Option<S::Value>> {
        match self.iter.next() {
            Some(value) => seed.deserialize(Member { key: self.key, value }).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct P {
        device: NonEmpty,
        limit: Option<Int<1, 1000>>,
        ratio: Option<Number>,
        on: Option<bool>,
        name: Option<String>,
        later: Option<Deferred<Int<0, 5>>>,
        topics: Option<Vec<String>>,
    }

    fn reason(params: Value) -> String {
        match decode::<P>(&params) {
            Err(Error::InvalidParams(r)) => r,
            other => panic!("expected -32602 for {params}, got {other:?}"),
        }
    }

    #[test]
    fn reasons_name_the_member() {
        assert_eq!(reason(json!({})), "device is required");
        assert_eq!(reason(Value::Null), "device is required");
        assert_eq!(reason(json!({"device": null})), "device is required");
        assert_eq!(reason(json!({"device": 3})), "device must be a string");
        assert_eq!(reason(json!({"device": "  "})), "device must not be empty");
        assert_eq!(reason(json!({"device": "a", "limit": 0})), "limit must be between 1 and 1000, got 0");
        assert_eq!(reason(json!({"device": "a", "limit": 1.5})), "limit must be an integer");
        assert_eq!(reason(json!({"device": "a", "limit": "5"})), "limit must be an integer");
        assert_eq!(reason(json!({"device": "a", "limit": u64::MAX})), "limit must be an integer");
        assert_eq!(reason(json!({"device": "a", "ratio": true})), "ratio must be a number");
        assert_eq!(reason(json!({"device": "a", "on": "yes"})), "on must be a boolean");
        assert_eq!(reason(json!({"device": "a", "name": 1})), "name must be a string");
        assert_eq!(reason(json!({"device": "a", "topics": ["x", 2]})), "topics must be a string");
        assert_eq!(reason(json!(["a"])), "params must be an object");
        assert_eq!(reason(json!("a")), "params must be an object");
    }

    #[test]
    fn values_decode_and_unknown_members_are_ignored() {
        let p: P = decode(&json!({"device": "cam", "limit": 7, "ratio": 1.5, "on": false, "auth_token": "t",
                                  "later": 9, "topics": ["a"]}))
        .unwrap();
        assert_eq!((&*p.device, p.limit, p.on, p.name), ("cam", Some(Int(7)), Some(false), None));
        assert_eq!(p.ratio.unwrap().raw, json!(1.5));
        assert_eq!(p.topics.unwrap(), ["a"]);
        // A deferred member's error waits for the handler, and names the member.
        let err = p.later.unwrap().get().unwrap_err();
        assert_eq!(err, Error::InvalidParams("later must be between 0 and 5, got 9".into()));
        let n: Number = decode::<NumHolder>(&json!({"n": 5})).unwrap().n;
        assert_eq!((n.value, n.raw), (5.0, json!(5)));
    }

    #[derive(Deserialize)]
    struct NumHolder {
        n: Number,
    }

    /// Every primitive a params struct may use, and members kept as raw JSON.
    #[derive(Debug, Deserialize, PartialEq)]
    struct Wide {
        a: u8,
        b: u16,
        c: u32,
        d: i8,
        e: i16,
        f: i32,
        g: f32,
        id: Id,
        extra: Option<Value>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Id(u64);

    #[test]
    fn narrow_integers_floats_newtypes_and_raw_members() {
        let base = json!({"a": 255, "b": 65535, "c": 7, "d": -128, "e": -3, "f": -70000, "g": 0.5, "id": 42});
        let w: Wide = decode(&base).unwrap();
        assert_eq!(w, Wide { a: 255, b: 65535, c: 7, d: -128, e: -3, f: -70000, g: 0.5, id: Id(42), extra: None });
        // Raw members keep whatever JSON they hold, nested values included.
        for extra in
            [json!(true), json!("s"), json!({"k": [1, -2, 2.5, null]}), json!(-5), json!(18446744073709551615u64)]
        {
            let mut p = base.clone();
            p["extra"] = extra.clone();
            assert_eq!(decode::<Wide>(&p).unwrap().extra, Some(extra));
        }
        // Out of a narrow type's range, or of the wrong type: the member is named.
        for (key, bad, why) in [
            ("a", json!(256), "a invalid value: integer `256`, expected u8"),
            ("d", json!(-129), "d invalid value: integer `-129`, expected i8"),
            ("c", json!(-1), "c invalid value: integer `-1`, expected u32"),
            ("e", json!(1.5), "e must be an integer"),
            ("g", json!("0.5"), "g must be a number"),
            ("id", json!("x"), "id must be an integer"),
        ] {
            let mut p = base.clone();
            p[key] = bad;
            assert_eq!(decode::<Wide>(&p).unwrap_err(), Error::InvalidParams(why.into()), "{key}");
        }
    }

    #[test]
    fn methods_without_params_ignore_any_shape() {
        for p in [Value::Null, json!({}), json!([1, 2]), json!("x"), json!(3)] {
            assert_eq!(decode::<NoParams>(&p).unwrap(), NoParams);
        }
    }
}
