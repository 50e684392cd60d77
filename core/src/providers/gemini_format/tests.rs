//! Fixture tests for the Gemini wire format (filled below).
