//! `multipart/form-data` (RFC 7578) bodies of text fields, for APIs that take forms instead
//! of JSON (Stability AI's v2beta image generation).

/// An ordered list of text fields.
#[derive(Debug, Default)]
pub struct Form {
    fields: Vec<(&'static str, String)>,
}

impl Form {
    pub fn new() -> Self {
        Form::default()
    }

    /// Adds a field. Names are the caller's own ASCII identifiers, never client input.
    pub fn text(&mut self, name: &'static str, value: impl Into<String>) {
        self.fields.push((name, value.into()));
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `content-type` header (with its boundary) and the body.
    pub fn encode(&self) -> (String, Vec<u8>) {
        let boundary = self.boundary();
        let mut body = Vec::with_capacity(self.fields.iter().map(|(_, v)| v.len() + 96).sum());
        for (name, value) in &self.fields {
            body.extend_from_slice(b"--");
            body.extend_from_slice(boundary.as_bytes());
            body.extend_from_slice(b"\r\ncontent-disposition: form-data; name=\"");
            body.extend_from_slice(name.as_bytes());
            body.extend_from_slice(b"\"\r\n\r\n");
            body.extend_from_slice(value.as_bytes());
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--");
        body.extend_from_slice(boundary.as_bytes());
        body.extend_from_slice(b"--\r\n");
        (format!("multipart/form-data; boundary={boundary}"), body)
    }

    /// A boundary that occurs in no value (a value holding it would end its part early).
    /// Derived from the content, so the same form always encodes the same way.
    fn boundary(&self) -> String {
        let mut seed = fnv1a(
            self.fields
                .iter()
                .flat_map(|(n, v)| n.as_bytes().iter().chain(v.as_bytes()).copied()),
        );
        loop {
            let candidate = format!("tollgate-form-{seed:016x}");
            if !self.fields.iter().any(|(_, v)| v.contains(&candidate)) {
                return candidate;
            }
            seed = seed.wrapping_mul(0x100_0000_01b3).wrapping_add(1);
        }
    }
}

fn fnv1a(bytes: impl Iterator<Item = u8>) -> u64 {
    bytes.fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_fields_in_order_between_boundaries() {
        let mut f = Form::new();
        f.text("prompt", "a red fox\r\nin snow");
        f.text("output_format", "png");
        let (ct, body) = f.encode();
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let text = String::from_utf8(body).unwrap();
        let expected = format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"prompt\"\r\n\r\na red fox\r\nin snow\r\n\
             --{boundary}\r\ncontent-disposition: form-data; name=\"output_format\"\r\n\r\npng\r\n\
             --{boundary}--\r\n"
        );
        assert_eq!(text, expected);
        assert_eq!(f.get("output_format"), Some("png"));
        assert_eq!(f.get("seed"), None);
    }

    #[test]
    fn the_boundary_never_occurs_in_a_value() {
        let mut f = Form::new();
        f.text("prompt", "x");
        let first = f.boundary();
        // A value that quotes the boundary the form would otherwise pick.
        let mut g = Form::new();
        g.text("prompt", "x");
        g.text("negative_prompt", first.clone());
        let chosen = g.boundary();
        assert!(!g.fields.iter().any(|(_, v)| v.contains(&chosen)));
        assert_eq!(chosen, g.boundary(), "deterministic");
    }

    #[test]
    fn an_empty_form_is_just_the_closing_boundary() {
        let (ct, body) = Form::new().encode();
        let b = ct.rsplit('=').next().unwrap();
        assert_eq!(body, format!("--{b}--\r\n").into_bytes());
    }
}
