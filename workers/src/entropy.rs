//! The `Entropy` port on Workers: Web Crypto's `crypto.getRandomValues`.

use tollgate_core::ports::Entropy;
use wasm_bindgen::JsCast;

pub struct WebCrypto;

/// `getRandomValues` fills at most this many bytes per call (the Web Crypto limit).
const MAX_PER_CALL: usize = 65_536;

impl Entropy for WebCrypto {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(MAX_PER_CALL) {
            if fill_from_web_crypto(chunk).is_err() {
                // Every Workers isolate has Web Crypto; this is unreachable in practice, and a
                // request must not fail for it: fall back to Math.random (ids stay distinct).
                for b in chunk.iter_mut() {
                    *b = (js_sys::Math::random() * 256.0) as u8;
                }
            }
        }
    }
}

fn fill_from_web_crypto(chunk: &mut [u8]) -> Result<(), wasm_bindgen::JsValue> {
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into())?;
    let get_random_values: js_sys::Function =
        js_sys::Reflect::get(&crypto, &"getRandomValues".into())?.dyn_into()?;
    let array = js_sys::Uint8Array::new_with_length(chunk.len() as u32);
    get_random_values.call1(&crypto, &array)?;
    array.copy_to(chunk);
    Ok(())
}
