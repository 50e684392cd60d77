//! Request recording for `/__mock/requests`: the last requests per upstream
//! model. Recording only clones refcounted bytes and the header map; JSON is
//! parsed when someone asks.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use hyper::http::request::Parts;
use hyper::HeaderMap;
use serde_json::Value;

use crate::json::{arr, Obj};

/// How many requests are kept per model.
pub const KEEP_PER_MODEL: usize = 50;

struct Entry {
    seq: u64,
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Default)]
pub struct Recorder {
    inner: Mutex<HashMap<String, VecDeque<Entry>>>,
    /// Requests per model since its last clear, beyond the kept window (`flaky` reads it).
    totals: Mutex<HashMap<String, u64>>,
    seq: AtomicU64,
}

impl Recorder {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Entry>>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn totals(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.totals.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one request; returns how many requests `model` has had since its last clear,
    /// this one included.
    pub fn record(&self, model: &str, parts: &Parts, body: &Bytes) -> u64 {
        let entry = Entry {
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers.clone(),
            body: body.clone(),
        };
        let mut map = self.lock();
        let list = match map.get_mut(model) {
            Some(list) => list,
            None => map.entry(model.to_owned()).or_default(),
        };
        if list.len() >= KEEP_PER_MODEL {
            list.pop_front();
        }
        list.push_back(entry);
        drop(map);
        let mut totals = self.totals();
        let n = totals.entry(model.to_owned()).or_default();
        *n += 1;
        *n
    }

    /// JSON array of the requests for `model` (all models if None), oldest first.
    pub fn list_json(&self, model: Option<&str>) -> Vec<u8> {
        let map = self.lock();
        let mut entries: Vec<&Entry> = match model {
            Some(m) => map.get(m).map(|l| l.iter().collect()).unwrap_or_default(),
            None => map.values().flatten().collect(),
        };
        entries.sort_by_key(|e| e.seq);
        arr(entries.into_iter().map(entry_json))
    }

    pub fn clear(&self, model: Option<&str>) {
        let (mut map, mut totals) = (self.lock(), self.totals());
        match model {
            Some(m) => {
                map.remove(m);
                totals.remove(m);
            }
            None => {
                map.clear();
                totals.clear();
            }
        }
    }
}

fn entry_json(e: &Entry) -> Vec<u8> {
    let mut headers = serde_json::Map::new();
    for name in e.headers.keys() {
        let joined = e
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        headers.insert(name.as_str().to_owned(), Value::String(joined));
    }
    let body: Value = serde_json::from_slice(&e.body).unwrap_or(Value::Null);
    Obj::new()
        .str("method", &e.method)
        .str("path", &e.path)
        .opt_str("query", e.query.as_deref())
        .val("headers", &headers)
        .val("body", &body)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::Request;

    fn parts(uri: &str) -> Parts {
        Request::post(uri)
            .header("Authorization", "Bearer k")
            .header("x-multi", "a")
            .header("x-multi", "b")
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn records_per_model_and_caps() {
        let r = Recorder::default();
        for i in 0..(KEEP_PER_MODEL + 5) {
            let body = Bytes::from(format!("{{\"model\":\"m\",\"i\":{i}}}"));
            r.record("m", &parts("/v1/chat/completions?x=1"), &body);
        }
        r.record(
            "other",
            &parts("/v1/messages"),
            &Bytes::from_static(b"{\"model\":\"other\"}"),
        );
        let list: Value = serde_json::from_slice(&r.list_json(Some("m"))).unwrap();
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), KEEP_PER_MODEL);
        assert_eq!(list[0]["body"]["i"], 5);
        assert_eq!(
            list.last().unwrap()["body"]["i"],
            (KEEP_PER_MODEL + 4) as u64
        );
        assert_eq!(list[0]["path"], "/v1/chat/completions");
        assert_eq!(list[0]["query"], "x=1");
        assert_eq!(list[0]["method"], "POST");
        assert_eq!(list[0]["headers"]["authorization"], "Bearer k");
        assert_eq!(list[0]["headers"]["x-multi"], "a, b");

        let all: Value = serde_json::from_slice(&r.list_json(None)).unwrap();
        assert_eq!(all.as_array().unwrap().len(), KEEP_PER_MODEL + 1);
        assert_eq!(
            all.as_array().unwrap().last().unwrap()["body"]["model"],
            "other"
        );

        r.clear(Some("m"));
        assert_eq!(r.list_json(Some("m")), b"[]");
        assert_ne!(r.list_json(Some("other")), b"[]");
        r.clear(None);
        assert_eq!(r.list_json(None), b"[]");
    }
}
