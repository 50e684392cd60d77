//! The arithmetic of one settled request: its usage at its rates, in integers.
//!
//! Sums are kept in femto-dollars (10⁻¹⁵ USD, `u128`): a token at a pico-dollar rate is 1,000
//! of them and a millisecond at a pico-dollar-per-second rate exactly one, so nothing is
//! rounded until the total, which is rounded once, half up, to nano-dollars.

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::rates::Rates;
use crate::ledger::{EndReason, Endpoint, Entry};

/// Femto-dollars in a pico-dollar.
const FEMTO_PER_PICO: u128 = 1_000;
/// Femto-dollars in a nano-dollar.
const FEMTO_PER_NANO: u128 = 1_000_000;

/// What `entry` cost at `rates`, in femto-dollars.
pub fn femtos(entry: &Entry, rates: &Rates) -> u128 {
    if entry.cache_hit {
        return 0;
    }
    if let Some(per_second) = rates.per_second {
        return per_second_femtos(entry, per_second);
    }
    if entry.endpoint == Endpoint::ImageGenerations {
        if let Some(per_image) = rates.per_image {
            return u128::from(images_made(entry))
                .saturating_mul(u128::from(per_image))
                .saturating_mul(FEMTO_PER_PICO);
        }
    }
    token_femtos(entry, rates)
}

/// Tokens by kind. `prompt_tokens` counts every input token, cache reads and writes
/// included (OpenAI's accounting, which every provider translation here follows), so the
/// plain input is what is left; reasoning is a share of `completion_tokens`, priced apart
/// only when the model has a reasoning price.
fn token_femtos(entry: &Entry, rates: &Rates) -> u128 {
    let Some(usage) = &entry.usage else {
        return 0;
    };
    let (cached, created) = usage.prompt_tokens_details.as_ref().map_or((0, 0), |d| {
        (d.cached_tokens, d.cache_creation_tokens.unwrap_or(0))
    });
    let plain_input = usage
        .prompt_tokens
        .saturating_sub(cached.saturating_add(created));
    let (reasoning, reasoning_rate) = match rates.reasoning {
        Some(rate) => {
            let tokens = usage
                .completion_tokens_details
                .as_ref()
                .map_or(0, |d| d.reasoning_tokens.min(usage.completion_tokens));
            (tokens, rate)
        }
        None => (0, 0),
    };
    let plain_output = usage.completion_tokens - reasoning;
    [
        (plain_input, rates.input),
        (cached, rates.cache_read),
        (created, rates.cache_creation),
        (plain_output, rates.output),
        (reasoning, reasoning_rate),
    ]
    .into_iter()
    .fold(0u128, |sum, (tokens, rate)| {
        sum.saturating_add(u128::from(tokens).saturating_mul(u128::from(rate)))
    })
    .saturating_mul(FEMTO_PER_PICO)
}

/// The answering attempt's duration, from sending it to the end of the request; nothing
/// when no upstream answered (the request failed, or never reached one).
fn per_second_femtos(entry: &Entry, per_second: u64) -> u128 {
    let Some(sent) = entry.attempt_started_ms else {
        return 0;
    };
    if entry.end == EndReason::Failed {
        return 0;
    }
    let ms = entry.ended_ms.saturating_sub(sent);
    u128::from(ms).saturating_mul(u128::from(per_second))
}

/// How many images a request made: the `data` entries of the answer when the ledger kept it;
/// otherwise 1 if an upstream was called and the request did not fail (the request's `n` is
/// not in the ledger), else none.
fn images_made(entry: &Entry) -> u64 {
    if entry.end == EndReason::Failed {
        return 0;
    }
    #[derive(Deserialize)]
    struct Answer {
        data: Vec<IgnoredAny>,
    }
    if let Some(bytes) = &entry.output {
        if let Ok(answer) = serde_json::from_slice::<Answer>(bytes) {
            return answer.data.len() as u64;
        }
    }
    u64::from(entry.attempt_started_ms.is_some())
}

/// Femto-dollars to nano-dollars, rounded half up, saturating at `i64::MAX`.
pub fn to_nanos(femtos: u128) -> i64 {
    let nanos = femtos.saturating_add(FEMTO_PER_NANO / 2) / FEMTO_PER_NANO;
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

/// Femto-dollars to nano-dollars, rounded up (a reservation never falls short).
pub fn to_nanos_ceil(femtos: u128) -> i64 {
    i64::try_from(femtos.div_ceil(FEMTO_PER_NANO)).unwrap_or(i64::MAX)
}

/// The most a call can cost on a deployment billed at `rates`, in femto-dollars: every prompt
/// token at the dearest input rate (a cache write costs more than plain input), every output
/// token at the dearest output rate (reasoning may cost more), at least one image for an image
/// model, and for a deployment billed by the second the whole of its `timeout_ms`.
pub fn most(rates: &Rates, prompt_tokens: u64, output_tokens: u64, timeout_ms: u64) -> u128 {
    if let Some(per_second) = rates.per_second {
        return u128::from(timeout_ms).saturating_mul(u128::from(per_second));
    }
    let input = rates.input.max(rates.cache_creation).max(rates.cache_read);
    let output = rates.output.max(rates.reasoning.unwrap_or(0));
    let tokens = u128::from(prompt_tokens)
        .saturating_mul(u128::from(input))
        .saturating_add(u128::from(output_tokens).saturating_mul(u128::from(output)));
    tokens
        .max(u128::from(rates.per_image.unwrap_or(0)))
        .saturating_mul(FEMTO_PER_PICO)
}
