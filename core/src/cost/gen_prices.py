#!/usr/bin/env python3
"""Cuts LiteLLM's model_prices_and_context_window.json down to what Tollgate prices with.

Usage:
    python3 core/src/cost/gen_prices.py UPSTREAM.json [--source TEXT] > core/src/cost/prices.tsv

UPSTREAM.json is LiteLLM's price map (MIT licensed, see LICENSE-litellm-prices beside this
script): the repository's `model_prices_and_context_window.json`, or the identical
`litellm/model_prices_and_context_window_backup.json` inside a litellm wheel
(`pip download --no-deps litellm==VERSION`, then unzip it). docs/cost.md has the steps.

The output is one tab-separated line per model, sorted by name, numbers written exactly as
upstream wrote them (the gateway converts them once, exactly, to integer pico-dollars):

    key  provider  mode  max_output_tokens  <one column per price in PRICE_FIELDS>

An absent value is an empty column; trailing empty columns are dropped. Lines starting with
`#` are comments; the first comment names the columns, so the Rust reader can refuse a file
written for another layout. Entries are kept only for the endpoints Tollgate serves and only
when they carry a price or an output cap; a malformed value is left out (and reported on
stderr), never guessed.
"""

import argparse
import decimal
import json
import sys

# The column order is the file format: core/src/cost/price_map.rs reads it by position.
PRICE_FIELDS = [
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "output_cost_per_reasoning_token",
    "output_cost_per_image_token",
    "output_cost_per_image",
    "input_cost_per_image",
    "input_cost_per_second",
    "output_cost_per_second",
]
HEADER = "# key\tprovider\tmode\tmax_output_tokens\t" + "\t".join(PRICE_FIELDS)

# Modes Tollgate has an endpoint for (chat, messages, completions, embeddings, images);
# `responses`-only models can still sit behind a chat deployment. Entries without a mode are
# kept too: LiteLLM treats them as chat.
KEPT_MODES = {"chat", "completion", "embedding", "image_generation", "responses", None}


def number_text(value):
    """The upstream number as exact decimal text, or None if it is not a non-negative number."""
    if isinstance(value, bool) or not isinstance(value, (int, decimal.Decimal)):
        return None
    d = decimal.Decimal(value)
    if not d.is_finite() or d < 0:
        return None
    text = format(d, "f") if d == d.to_integral_value() else str(d)
    # Decimal prints 0.0000025 as 2.5E-6; the lower-case form is shorter to read, same value.
    return text.replace("E", "e")


def plain(text):
    """Text safe in one TSV cell."""
    return isinstance(text, str) and text and not any(c in text for c in "\t\r\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upstream", help="LiteLLM's model_prices_and_context_window.json")
    parser.add_argument("--source", default="", help="where the file came from, for the header")
    args = parser.parse_args()

    with open(args.upstream, encoding="utf-8") as f:
        upstream = json.load(f, parse_float=decimal.Decimal)

    lines = []
    skipped = 0
    for key in sorted(upstream):
        entry = upstream[key]
        if key == "sample_spec" or not isinstance(entry, dict) or not plain(key):
            continue
        mode = entry.get("mode")
        if mode not in KEPT_MODES:
            continue
        provider = entry.get("litellm_provider")
        provider = provider if plain(provider) else ""
        max_out = entry.get("max_output_tokens")
        max_out = number_text(max_out) if isinstance(max_out, int) else None
        prices = []
        for field in PRICE_FIELDS:
            if field not in entry or entry[field] is None:
                prices.append("")
                continue
            text = number_text(entry[field])
            if text is None:
                print(f"skipped {key}.{field}: {entry[field]!r}", file=sys.stderr)
                skipped += 1
                text = ""
            prices.append(text)
        if not any(prices) and max_out is None:
            continue
        row = [key, provider, mode or "", max_out or ""] + prices
        while row and row[-1] == "":
            row.pop()
        lines.append("\t".join(row))

    out = sys.stdout
    out.write(HEADER + "\n")
    out.write("# Cut from LiteLLM's model_prices_and_context_window.json (MIT, Copyright (c) 2023\n")
    out.write("# Berri AI; see LICENSE-litellm-prices) by gen_prices.py. Do not edit by hand.\n")
    if args.source:
        out.write(f"# Source: {args.source}\n")
    for line in lines:
        out.write(line + "\n")
    print(f"{len(lines)} models written, {skipped} values skipped", file=sys.stderr)


if __name__ == "__main__":
    main()
