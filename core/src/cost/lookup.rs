//! Which shipped-map entry prices a deployment, by LiteLLM's rules: the names are tried in
//! order and the first one the map knows wins.
//!
//! 1. `base_model` (`model_info`, else `litellm_params`): Azure deployments are named by the
//!    operator (`azure/my-gpt4`), so LiteLLM prices the model named there; tried as
//!    `provider/base_model`, as written, then without its own prefix.
//! 2. Bedrock's regional price, `bedrock/<aws_region_name>/<model id>`, when a region is set.
//! 3. `litellm_params.model` as written (`azure/gpt-4o`, `gemini/gemini-2.5-pro`), and with
//!    the provider's canonical prefix (`vertex_ai_beta/x` → `vertex_ai/x`).
//! 4. The upstream model without its prefix (`gpt-4o`, `claude-sonnet-4-5`,
//!    `anthropic.claude-...` for Bedrock, whose `converse/`/`invoke/` route is dropped), but
//!    only if the map says it is the same provider's: `groq/llama-3.1-8b` must not take
//!    another host's price for `llama-3.1-8b`.
//!
//! The model the upstream reports answering with is tried when none of these is priced:
//! `provider/<reported>`, then the reported name (same-provider check again).

use super::price_map::{MapEntry, PriceMap};
use crate::deployment::{Deployment, ProviderId};

/// A map entry with the key it was found under.
pub type Found<'m> = (&'static str, &'m MapEntry<'static>);

/// The map entry for `deployment`'s own names.
pub fn deployment_entry<'m>(map: &'m PriceMap<'static>, d: &Deployment) -> Option<Found<'m>> {
    let prefix = d.provider.prefix();
    let mut names: Vec<(String, bool)> = Vec::new();
    if let Some(base) = crate::providers::azure::base_model(d) {
        if !base.starts_with(&format!("{prefix}/")) {
            names.push((format!("{prefix}/{base}"), false));
        }
        names.push((base.to_string(), false));
        if let Some((_, rest)) = base.split_once('/') {
            names.push((rest.to_string(), false));
        }
    }
    let model_id = bare_model_id(d);
    if d.provider == ProviderId::Bedrock {
        if let Some(region) = d
            .params
            .extra
            .get("aws_region_name")
            .and_then(|v| v.as_str())
        {
            names.push((format!("bedrock/{region}/{model_id}"), false));
        }
    }
    names.push((d.params.model.trim().to_string(), false));
    names.push((format!("{prefix}/{}", d.upstream_model), false));
    names.push((model_id.to_string(), true));
    first_known(map, prefix, &names)
}

/// The map entry for the model the upstream reported (`gpt-4o-2024-08-06`).
pub fn response_model_entry<'m>(
    map: &'m PriceMap<'static>,
    d: &Deployment,
    reported: &str,
) -> Option<Found<'m>> {
    let reported = reported.trim();
    if reported.is_empty() {
        return None;
    }
    let prefix = d.provider.prefix();
    let mut names = vec![
        (format!("{prefix}/{reported}"), false),
        (reported.to_string(), true),
    ];
    if let Some((_, rest)) = reported.split_once('/') {
        names.push((rest.to_string(), true));
    }
    first_known(map, prefix, &names)
}

/// The first of `names` the map knows; those marked `true` only if the entry's provider is
/// the deployment's.
fn first_known<'m>(
    map: &'m PriceMap<'static>,
    provider: &str,
    names: &[(String, bool)],
) -> Option<Found<'m>> {
    names.iter().find_map(|(name, check)| {
        map.get(name)
            .filter(|(_, e)| !check || same_provider(provider, e.provider))
    })
}

/// The model id without Bedrock's route prefix (`converse/`, `invoke/`), as the provider
/// sends it.
fn bare_model_id(d: &Deployment) -> &str {
    let m = d.upstream_model.as_str();
    if d.provider == ProviderId::Bedrock {
        return m
            .strip_prefix("converse/")
            .or_else(|| m.strip_prefix("invoke/"))
            .unwrap_or(m);
    }
    m
}

/// Whether the map's `litellm_provider` names the deployment's provider. LiteLLM splits some
/// providers by route (`bedrock_converse`, `vertex_ai-language-models`, `cohere_chat`), so a
/// name that starts with the other counts; the built-in mock stands in for any model.
fn same_provider(deployment: &str, entry: &str) -> bool {
    let openai = |p: &str| p == "openai" || p == "text-completion-openai";
    entry.is_empty()
        || deployment == "mock"
        || deployment.starts_with(entry)
        || entry.starts_with(deployment)
        || (openai(deployment) && openai(entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_split_by_route_are_the_same_provider() {
        assert!(same_provider("bedrock", "bedrock_converse"));
        assert!(same_provider("vertex_ai", "vertex_ai-language-models"));
        assert!(same_provider("cohere_chat", "cohere"));
        assert!(same_provider("text-completion-openai", "openai"));
        assert!(same_provider("mock", "anthropic"));
        assert!(!same_provider("groq", "openai"));
        assert!(!same_provider("openai", "azure"));
    }
}
