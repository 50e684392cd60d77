//! The tools of a chat request for the APIs that take only functions.

use crate::error::GatewayError;
use crate::openai::{ChatRequest, Tool};

/// The request's tools, which must all be functions: `provider` names the API that refuses
/// any other kind.
pub fn function_tools<'a>(
    req: &'a ChatRequest,
    provider: &str,
) -> Result<Vec<&'a Tool>, GatewayError> {
    let tools: Vec<&Tool> = req.tools.iter().flatten().collect();
    if let Some((i, tool)) = tools.iter().enumerate().find(|(_, t)| t.kind != "function") {
        return Err(GatewayError::invalid_request(format!(
            "{provider} supports only function tools, not {:?}",
            tool.kind
        ))
        .with_param(format!("tools[{i}].type")));
    }
    Ok(tools)
}
