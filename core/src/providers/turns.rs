//! User and assistant turns for the APIs that need them to alternate (Anthropic Messages,
//! Bedrock Converse).

use serde_json::{json, Value};

#[derive(Default)]
pub struct Turns(Vec<(&'static str, Vec<Value>)>);

impl Turns {
    /// Adds a message's blocks. Empty messages are refused upstream, so they are dropped
    /// (the conversation stays valid); one of the last turn's role joins that turn.
    pub fn push(&mut self, role: &'static str, blocks: Vec<Value>) {
        if blocks.is_empty() {
            return;
        }
        match self.0.last_mut() {
            Some((last, prev)) if *last == role => prev.extend(blocks),
            _ => self.0.push((role, blocks)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The turns as `{role, content}` messages. Models refuse a final (prefill) assistant
    /// turn that ends in whitespace, so its last text is trimmed.
    pub fn into_messages(mut self) -> Vec<Value> {
        if let Some(("assistant", blocks)) = self.0.last_mut() {
            if let Some(Value::String(text)) = blocks.last_mut().and_then(|b| b.get_mut("text")) {
                let trimmed = text.trim_end().len();
                text.truncate(trimmed);
            }
        }
        self.0
            .into_iter()
            .map(|(role, content)| json!({ "role": role, "content": content }))
            .collect()
    }
}
