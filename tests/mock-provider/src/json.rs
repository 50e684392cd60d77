//! A tiny ordered JSON object writer: the providers' field order is kept (the
//! workspace's serde_json sorts `Value` maps), and it avoids building `Value`s
//! on the hot path.

use serde::Serialize;

pub struct Obj {
    buf: Vec<u8>,
    first: bool,
}

impl Default for Obj {
    fn default() -> Self {
        Self::new()
    }
}

impl Obj {
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.push(b'{');
        Obj { buf, first: true }
    }

    /// Keys are static ASCII identifiers: written without escaping.
    fn key(&mut self, k: &str) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        self.buf.push(b'"');
        self.buf.extend_from_slice(k.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    /// Any serializable value (strings are escaped properly).
    pub fn val<T: Serialize + ?Sized>(mut self, k: &str, v: &T) -> Self {
        self.key(k);
        // Writing into a Vec cannot fail for these types; fall back to null.
        if serde_json::to_writer(&mut self.buf, v).is_err() {
            self.buf.extend_from_slice(b"null");
        }
        self
    }

    pub fn str(self, k: &str, v: &str) -> Self {
        self.val(k, v)
    }

    pub fn num(mut self, k: &str, v: u64) -> Self {
        self.key(k);
        self.buf.extend_from_slice(v.to_string().as_bytes());
        self
    }

    pub fn null(self, k: &str) -> Self {
        self.raw(k, b"null")
    }

    pub fn opt_str(self, k: &str, v: Option<&str>) -> Self {
        match v {
            Some(s) => self.str(k, s),
            None => self.null(k),
        }
    }

    /// Pre-serialized JSON.
    pub fn raw(mut self, k: &str, raw: &[u8]) -> Self {
        self.key(k);
        self.buf.extend_from_slice(raw);
        self
    }

    pub fn obj(self, k: &str, o: Obj) -> Self {
        let inner = o.finish();
        self.raw(k, &inner)
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(b'}');
        self.buf
    }
}

/// `[a,b,...]` from pre-serialized JSON items.
pub fn arr<I: IntoIterator<Item = Vec<u8>>>(items: I) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&item);
    }
    out.push(b']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn writes_ordered_valid_json() {
        let inner = Obj::new().num("n", 3).null("z");
        let out = Obj::new()
            .str("type", "x\"y\n")
            .obj("inner", inner)
            .raw("list", &arr([b"1".to_vec(), b"{}".to_vec()]))
            .opt_str("none", None)
            .val("f", &0.5f32)
            .finish();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(
            text.starts_with("{\"type\":\"x\\\"y\\n\",\"inner\":{\"n\":3"),
            "{text}"
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"type": "x\"y\n", "inner": {"n": 3, "z": null}, "list": [1, {}],
                   "none": null, "f": 0.5})
        );
        assert_eq!(Obj::new().finish(), b"{}");
        assert_eq!(arr(Vec::<Vec<u8>>::new()), b"[]");
    }
}
