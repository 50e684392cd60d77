//! One set of rates a request is billed at, resolved from the price sources of a deployment,
//! highest priority first: its `litellm_params`, its `model_info`,
//! `general_settings.cost_per_token`, then the shipped map.
//!
//! Each price comes from the first source that sets it, with one exception: a cache or
//! reasoning price is a discount or surcharge quoted against a base price (input, output), so
//! it is only taken from the source that set that base price or a higher one. An operator who
//! prices a deployment's input at 0 (a self-hosted copy) does not see its cached tokens billed
//! at the public map's cache price.

use super::prices::{Pico, Prices};

/// What a deployment is billed at, in pico-dollars per unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    pub input: u64,
    pub output: u64,
    /// Defaults to the input rate: a provider that publishes no cache price bills cached
    /// tokens as ordinary input (LiteLLM's rule).
    pub cache_read: u64,
    pub cache_creation: u64,
    /// `None`: reasoning tokens are billed as output.
    pub reasoning: Option<u64>,
    /// Per image made, for image generation.
    pub per_image: Option<u64>,
    /// `Some`: the deployment is billed by the second of the call, not by the token.
    pub per_second: Option<u64>,
}

impl Rates {
    /// The rates `sources` (highest priority first) give; `None` when none of them prices
    /// anything (the model is unpriced).
    pub fn resolve(sources: &[&Prices]) -> Option<Rates> {
        if sources.iter().all(|s| s.is_empty()) {
            return None;
        }
        let all = sources.len();
        let input = first(sources, all, |p| p.input_per_token);
        // Image models without a plain output price bill output at the image-token price.
        let output = first(sources, all, |p| {
            match (p.output_per_token, p.output_per_image_token) {
                (Some(o), Some(img)) if o.0 == 0 => Some(img),
                (o, img) => o.or(img),
            }
        });
        let upto = |base: Option<(usize, Pico)>| base.map_or(all, |(i, _)| i + 1);
        let input_rate = input.map_or(0, |(_, p)| p.0);
        let cache_read = first(sources, upto(input), |p| p.cache_read_per_token);
        let cache_creation = first(sources, upto(input), |p| p.cache_creation_per_token);
        let reasoning = first(sources, upto(output), |p| p.reasoning_per_token);
        // For image generation LiteLLM prices an image with `input_cost_per_image` when no
        // output price is given (`low/1024-x-1024/gpt-image-1.5`).
        let per_image = first(sources, all, |p| p.output_per_image.or(p.input_per_image));
        // LiteLLM bills one per-second rate: the input one, else the output one.
        let per_second = first(sources, all, |p| p.input_per_second.or(p.output_per_second));
        // By the second only when that is what the highest source pricing anything says: the
        // map lists per-second rates next to token rates for some models, and tokens win there.
        let token_source = match (input, output) {
            (Some((i, _)), Some((o, _))) => Some(i.min(o)),
            (a, b) => a.or(b).map(|(i, _)| i),
        };
        let by_second = match (per_second, token_source) {
            (Some((s, _)), Some(t)) => s < t,
            (Some(_), None) => true,
            (None, _) => false,
        };
        Some(Rates {
            input: input_rate,
            output: output.map_or(0, |(_, p)| p.0),
            cache_read: cache_read.map_or(input_rate, |(_, p)| p.0),
            cache_creation: cache_creation.map_or(input_rate, |(_, p)| p.0),
            reasoning: reasoning.map(|(_, p)| p.0),
            per_image: per_image.map(|(_, p)| p.0),
            per_second: per_second.filter(|_| by_second).map(|(_, p)| p.0),
        })
    }
}

/// The first of `sources[..upto]` that sets the price `get` reads, with its position.
fn first(
    sources: &[&Prices],
    upto: usize,
    get: impl Fn(&Prices) -> Option<Pico>,
) -> Option<(usize, Pico)> {
    sources
        .iter()
        .take(upto)
        .enumerate()
        .find_map(|(i, s)| get(s).map(|p| (i, p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prices(set: &[(&str, u64)]) -> Prices {
        let mut p = Prices::default();
        for (name, pico) in set {
            assert!(p.set(name, Pico(*pico)), "{name}");
        }
        p
    }

    #[test]
    fn nothing_priced_is_unpriced() {
        assert_eq!(Rates::resolve(&[]), None);
        assert_eq!(
            Rates::resolve(&[&Prices::default(), &Prices::default()]),
            None
        );
    }

    #[test]
    fn each_price_comes_from_the_first_source_that_sets_it() {
        let deployment = prices(&[("input_cost_per_token", 1)]);
        let map = prices(&[("input_cost_per_token", 10), ("output_cost_per_token", 20)]);
        let r = Rates::resolve(&[&deployment, &map]).unwrap();
        assert_eq!((r.input, r.output), (1, 20));
    }

    #[test]
    fn cache_prices_do_not_outlive_the_input_price_they_discount() {
        let deployment = prices(&[("input_cost_per_token", 0)]);
        let map = prices(&[
            ("input_cost_per_token", 10),
            ("cache_read_input_token_cost", 5),
            ("cache_creation_input_token_cost", 12),
        ]);
        let r = Rates::resolve(&[&deployment, &map]).unwrap();
        assert_eq!(
            (r.cache_read, r.cache_creation),
            (0, 0),
            "the deployment's input"
        );
        // A source above the input's may still set them.
        let discount = prices(&[("cache_read_input_token_cost", 1)]);
        let r = Rates::resolve(&[&discount, &map]).unwrap();
        assert_eq!((r.input, r.cache_read, r.cache_creation), (10, 1, 12));
    }

    #[test]
    fn reasoning_follows_the_output_price_source() {
        let deployment = prices(&[("output_cost_per_token", 7)]);
        let map = prices(&[
            ("output_cost_per_token", 20),
            ("output_cost_per_reasoning_token", 30),
        ]);
        assert_eq!(
            Rates::resolve(&[&deployment, &map]).unwrap().reasoning,
            None
        );
        assert_eq!(Rates::resolve(&[&map]).unwrap().reasoning, Some(30));
    }

    #[test]
    fn image_token_price_stands_in_for_a_missing_output_price() {
        let img = prices(&[("output_cost_per_image_token", 40)]);
        assert_eq!(Rates::resolve(&[&img]).unwrap().output, 40);
        let zero = prices(&[
            ("output_cost_per_token", 0),
            ("output_cost_per_image_token", 40),
        ]);
        assert_eq!(Rates::resolve(&[&zero]).unwrap().output, 40);
        let both = prices(&[
            ("output_cost_per_token", 3),
            ("output_cost_per_image_token", 40),
        ]);
        assert_eq!(Rates::resolve(&[&both]).unwrap().output, 3);
    }

    #[test]
    fn per_second_only_when_the_highest_pricing_source_says_so() {
        let seconds = prices(&[("input_cost_per_second", 100)]);
        let tokens = prices(&[("input_cost_per_token", 1), ("output_cost_per_token", 2)]);
        assert_eq!(
            Rates::resolve(&[&seconds, &tokens]).unwrap().per_second,
            Some(100)
        );
        assert_eq!(
            Rates::resolve(&[&tokens, &seconds]).unwrap().per_second,
            None
        );
        let both = prices(&[("input_cost_per_token", 1), ("output_cost_per_second", 9)]);
        assert_eq!(
            Rates::resolve(&[&both]).unwrap().per_second,
            None,
            "tokens win"
        );
        let out = prices(&[("output_cost_per_second", 9)]);
        assert_eq!(Rates::resolve(&[&out]).unwrap().per_second, Some(9));
    }

    #[test]
    fn per_image_prefers_the_output_price() {
        let both = prices(&[("output_cost_per_image", 4), ("input_cost_per_image", 1)]);
        assert_eq!(Rates::resolve(&[&both]).unwrap().per_image, Some(4));
        let input_only = prices(&[("input_cost_per_image", 1)]);
        assert_eq!(Rates::resolve(&[&input_only]).unwrap().per_image, Some(1));
    }
}
