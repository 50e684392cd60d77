//! mock-provider: a fake OpenAI + Anthropic + Gemini + Bedrock + Cohere + Ollama + Azure
//! upstream for Tollgate's end-to-end tests and latency benchmarks. Behaviour is chosen by the upstream `model`
//! string of each request (see README.md), so one instance serves all tests.

mod anthropic;
mod azure;
mod bedrock;
mod body;
mod cohere;
#[cfg(test)]
mod cross_check;
mod gemini;
mod google_token;
mod http;
mod images;
mod json;
mod logic;
mod ollama;
mod openai;
mod record;
mod sigv4;
mod stability;

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::TcpListener;

use crate::http::Resp;
use crate::logic::{query_param, scenario};
use crate::record::Recorder;

/// How long an idle keep-alive connection may wait for its next request's headers.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(75);

/// Request bodies larger than this are refused (413).
const MAX_BODY: usize = 32 * 1024 * 1024;

const USAGE: &str = "usage: mock-provider [--host 127.0.0.1] [--port 0] [--threads 1]\n\
  --host     address to bind (default 127.0.0.1)\n\
  --port     port to bind, 0 picks a free one (default 0)\n\
  --threads  tokio worker threads; 1 = single-threaded runtime (default 1)\n\
Prints `listening on http://HOST:PORT` once bound.";

#[derive(Debug, PartialEq)]
struct Args {
    host: String,
    port: u16,
    threads: usize,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut args = Args {
        host: "127.0.0.1".into(),
        port: 0,
        threads: 1,
    };
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or(format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--host" => args.host = value()?,
            "--port" => args.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--threads" => {
                args.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?;
                if args.threads == 0 {
                    return Err("--threads must be at least 1".into());
                }
            }
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(Some(args))
}

fn main() {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(msg) => {
            eprintln!("mock-provider: {msg}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let result = match runtime {
        Ok(rt) => rt.block_on(serve(args)),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        eprintln!("mock-provider: {e}");
        std::process::exit(1);
    }
}

#[derive(Default)]
struct State {
    rec: Recorder,
}

async fn serve(args: Args) -> std::io::Result<()> {
    let listener = TcpListener::bind((args.host.as_str(), args.port)).await?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}")?;
        out.flush()?;
    }
    let state = Arc::new(State::default());
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(_) => {
                // Out of file descriptors and the like: back off, keep serving.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(req, &state).await) }
            });
            // Idle keep-alive connections are closed after 75 s (nginx's default), longer
            // than the gateway's pool keeps them, as with real providers' load balancers;
            // hyper's own default (30 s) would race the gateway's reuse of idle connections.
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(IDLE_CONNECTION_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Chat,
    Completions,
    Embeddings,
    Images,
    Messages,
    CountTokens,
    /// `/model/{id}/converse`, `/converse-stream`, `/invoke` (Bedrock runtime).
    Bedrock,
    CohereChat,
    CohereEmbed,
    Ollama(ollama::Endpoint),
    Azure,
}

const KNOWN_PATHS: &[&str] = &[
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/images/generations",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/v1/models",
    "/v2/chat",
    "/v2/embed",
    "/api/chat",
    "/api/generate",
    "/api/embed",
    "/__mock/requests",
    "/__mock/health",
];

async fn handle(req: Request<Incoming>, state: &State) -> Resp {
    if req.method() == Method::POST {
        if req.uri().path() == "/token" {
            return google_token_route(req).await;
        }
        if let Some(route) = gemini::ModelRoute::parse(req.uri().path()) {
            return gemini_route(route, req, state).await;
        }
        if let Some(endpoint) = stability::parse_path(req.uri().path()) {
            let endpoint = endpoint.to_owned();
            return stability_route(&endpoint, req, state).await;
        }
    }
    let route = match (req.method(), req.uri().path()) {
        (&Method::POST, "/v1/chat/completions") => Route::Chat,
        (&Method::POST, "/v1/completions") => Route::Completions,
        (&Method::POST, "/v1/embeddings") => Route::Embeddings,
        (&Method::POST, "/v1/images/generations") => Route::Images,
        (&Method::POST, "/v1/messages") => Route::Messages,
        (&Method::POST, "/v1/messages/count_tokens") => Route::CountTokens,
        (&Method::POST, p) if p.starts_with("/model/") => Route::Bedrock,
        (&Method::POST, "/v2/chat") => Route::CohereChat,
        (&Method::POST, "/v2/embed") => Route::CohereEmbed,
        (&Method::POST, "/api/chat") => Route::Ollama(ollama::Endpoint::Chat),
        (&Method::POST, "/api/generate") => Route::Ollama(ollama::Endpoint::Generate),
        (&Method::POST, "/api/embed") => Route::Ollama(ollama::Endpoint::Embed),
        (&Method::POST, p) if azure::parse_path(p).is_some() => Route::Azure,
        (&Method::GET, "/v1/models") => return models(req.headers()),
        (&Method::GET, "/__mock/requests") => {
            let model = query_param(req.uri().query(), "model");
            return http::json(200, state.rec.list_json(model.as_deref()));
        }
        (&Method::DELETE, "/__mock/requests") => {
            let model = query_param(req.uri().query(), "model");
            state.rec.clear(model.as_deref());
            return http::json(200, b"{\"cleared\":true}".to_vec());
        }
        (&Method::GET, "/__mock/health") => {
            return http::json(200, b"{\"status\":\"ok\"}".to_vec())
        }
        (m, p) => {
            let (status, what) = if KNOWN_PATHS.contains(&p) {
                (405, "Method not allowed")
            } else {
                (404, "Unknown request URL")
            };
            let mut e =
                openai::ApiError::new(status, format!("{what}: {m} {p}."), "invalid_request_error");
            e.code = Some(if status == 404 {
                "unknown_url"
            } else {
                "method_not_allowed"
            });
            return e.response();
        }
    };

    let (parts, body) = req.into_parts();
    let bytes: Bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            let too_large = e.is::<http_body_util::LengthLimitError>();
            let (status, msg) = if too_large {
                (413, "Request body too large".to_owned())
            } else {
                (400, format!("Could not read request body: {e}"))
            };
            return match route {
                Route::Messages | Route::CountTokens => anthropic::ApiError::new(
                    status,
                    if too_large {
                        "request_too_large"
                    } else {
                        "invalid_request_error"
                    },
                    msg,
                )
                .response(),
                Route::Bedrock => {
                    bedrock::ApiError::new(status, "ValidationException", msg).response()
                }
                _ => openai::ApiError::new(status, msg, "invalid_request_error").response(),
            };
        }
    };
    if route == Route::Bedrock {
        return bedrock_route(&parts, &bytes, state).await;
    }
    let parsed: Result<Value, serde_json::Error> = serde_json::from_slice(&bytes);
    // On Azure's deployment path the deployment plays the model.
    let azure_path = azure::parse_path(parts.uri.path());
    let body_model = parsed
        .as_ref()
        .ok()
        .and_then(|v| v.get("model"))
        .and_then(Value::as_str);
    if let Some(model) = azure_path
        .as_ref()
        .and_then(|p| p.deployment)
        .or(body_model)
    {
        let nth = state.rec.record(model, &parts, &bytes);
        if logic::flaky_fails(model, nth) {
            return openai::ApiError::new(503, "flaky: every other request fails", "server_error")
                .response();
        }
    }
    match route {
        Route::Messages | Route::CountTokens => anthropic_route(route, &parts, parsed).await,
        Route::CohereChat => cohere::handle(false, &parts, parsed).await,
        Route::CohereEmbed => cohere::handle(true, &parts, parsed).await,
        Route::Ollama(endpoint) => ollama::handle(endpoint, parsed).await,
        Route::Azure => match azure_path {
            Some(path) => azure::handle(path, &parts, parsed).await,
            None => openai_route(route, &parts, parsed).await,
        },
        _ => openai_route(route, &parts, parsed).await,
    }
}

fn models(headers: &HeaderMap) -> Resp {
    let anthropic_style = headers.contains_key("anthropic-version");
    if anthropic_style {
        match anthropic::check_headers(headers) {
            Ok(()) => anthropic::models(),
            Err(e) => e.response(),
        }
    } else {
        match openai::check_auth(headers) {
            Ok(()) => openai::models(),
            Err(e) => e.response(),
        }
    }
}

async fn apply_delay(ms: Option<u64>) {
    if let Some(ms) = ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

async fn openai_route(
    route: Route,
    parts: &Parts,
    parsed: Result<Value, serde_json::Error>,
) -> Resp {
    if let Err(e) = openai::check_auth(&parts.headers) {
        return e.response();
    }
    let v = match parsed {
        Ok(v) if v.is_object() => v,
        Ok(_) => {
            return openai::ApiError::invalid("The request body must be a JSON object.", None, None)
                .response()
        }
        Err(e) => return openai::not_json(&e).response(),
    };
    let checked = match route {
        Route::Chat => openai::validate_chat(&v),
        Route::Completions => openai::validate_completions(&v),
        Route::Images => images::validate(&v),
        _ => openai::validate_embeddings(&v),
    };
    if let Err(e) = checked {
        return e.response();
    }
    let model = v.get("model").and_then(Value::as_str).unwrap_or("");
    let sc = scenario(model);
    apply_delay(sc.slow_ms).await;
    if let Some(status) = sc.error_status {
        return openai::simulated_error(status, model).response();
    }
    if sc.context_overflow {
        return openai::context_overflow().response();
    }
    match route {
        Route::Chat => openai::chat(&v, model, &sc),
        Route::Completions => openai::completions(&v, model, &sc),
        Route::Images => images::generate(&v),
        _ => openai::embeddings(&v, model),
    }
}

async fn anthropic_route(
    route: Route,
    parts: &Parts,
    parsed: Result<Value, serde_json::Error>,
) -> Resp {
    if let Err(e) = anthropic::check_headers(&parts.headers) {
        return e.response();
    }
    let mut v = match parsed {
        Ok(v) => v,
        Err(e) => return anthropic::not_json(&e).response(),
    };
    if route == Route::CountTokens {
        // count_tokens takes the same body minus max_tokens.
        if let Some(o) = v.as_object_mut() {
            o.entry("max_tokens").or_insert(Value::from(1));
        }
    }
    if let Err(e) = anthropic::validate(&v) {
        return e.response();
    }
    let model = v.get("model").and_then(Value::as_str).unwrap_or("");
    let sc = scenario(model);
    apply_delay(sc.slow_ms).await;
    if let Some(status) = sc.error_status {
        return anthropic::simulated_error(status, model).response();
    }
    if sc.context_overflow {
        return anthropic::context_overflow().response();
    }
    if route == Route::CountTokens {
        return anthropic::count_tokens(&v);
    }
    anthropic::messages(&v, model, &sc)
}

/// Gemini (AI Studio and Vertex AI): the model is in the path, not the body.
async fn gemini_route(route: gemini::ModelRoute, req: Request<Incoming>, state: &State) -> Resp {
    let (parts, body) = req.into_parts();
    let Ok(collected) = Limited::new(body, MAX_BODY).collect().await else {
        return gemini::ApiError::new(413, "Request payload size exceeds the limit.").response();
    };
    let bytes = collected.to_bytes();
    let _ = state.rec.record(&route.model, &parts, &bytes);
    if let Err(e) = gemini::check_auth(route.api, &parts) {
        return e.response();
    }
    let sc = scenario(&route.model);
    apply_delay(sc.slow_ms).await;
    gemini::answer(&route, parts.uri.query(), &bytes, &sc)
}

/// Stability AI: a multipart form, recorded (as a JSON object of its fields) under the
/// model it names before any check.
async fn stability_route(endpoint: &str, req: Request<Incoming>, state: &State) -> Resp {
    let (parts, body) = req.into_parts();
    let Ok(collected) = Limited::new(body, MAX_BODY).collect().await else {
        return stability::ApiError::new(413, "payload_too_large", "body: too large").response();
    };
    let bytes = collected.to_bytes();
    let fields = match stability::parse_form(&parts.headers, &bytes) {
        Ok(f) => f,
        Err(e) => {
            state
                .rec
                .record(&format!("stable-image-{endpoint}"), &parts, &bytes);
            return e.response();
        }
    };
    let model = stability::model_of(endpoint, &fields);
    state
        .rec
        .record(&model, &parts, &stability::fields_json(&fields));
    if let Err(e) = stability::check_auth(&parts) {
        return e.response();
    }
    if let Err(e) = stability::validate(endpoint, &fields) {
        return e.response();
    }
    let sc = scenario(&model);
    apply_delay(sc.slow_ms).await;
    if let Some(status) = sc.error_status {
        return stability::simulated_error(status, &model).response();
    }
    stability::generate(&parts, &fields)
}

/// The fake Google OAuth token endpoint Vertex AI credentials are exchanged at.
async fn google_token_route(req: Request<Incoming>) -> Resp {
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(c) => google_token::token(&c.to_bytes()),
        Err(_) => gemini::ApiError::new(413, "Request payload size exceeds the limit.").response(),
    }
}

/// Bedrock names the model in the path, not the body; requests are recorded under that id
/// before any check, like the others.
async fn bedrock_route(parts: &Parts, bytes: &Bytes, state: &State) -> Resp {
    let Some((model, op)) = bedrock::parse_path(parts.uri.path()) else {
        let msg = format!("Unknown operation: {}", parts.uri.path());
        return bedrock::ApiError::new(404, "UnknownOperationException", msg).response();
    };
    let _ = state.rec.record(&model, parts, bytes);
    if let Err(e) = bedrock::check_auth(parts, bytes) {
        return e.response();
    }
    let v: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            return bedrock::ApiError::validation(format!("Malformed input request: {e}"))
                .response()
        }
    };
    if op != bedrock::Operation::Invoke {
        if let Err(e) = bedrock::validate_converse(&v) {
            return e.response();
        }
    }
    let sc = scenario(&model);
    apply_delay(sc.slow_ms).await;
    if let Some(status) = sc.error_status {
        return bedrock::simulated_error(status).response();
    }
    if sc.context_overflow {
        return bedrock::context_overflow().response();
    }
    match op {
        bedrock::Operation::Invoke => bedrock::invoke(&v, &model),
        _ => bedrock::converse(&v, op, &sc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Option<Args>, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn cli_parsing() {
        let a = args(&[]).unwrap().unwrap();
        assert_eq!(
            a,
            Args {
                host: "127.0.0.1".into(),
                port: 0,
                threads: 1
            }
        );
        let a = args(&["--host", "::1", "--port=5555", "--threads", "2"])
            .unwrap()
            .unwrap();
        assert_eq!(
            a,
            Args {
                host: "::1".into(),
                port: 5555,
                threads: 2
            }
        );
        assert!(args(&["--help"]).unwrap().is_none());
        assert!(args(&["--port"]).is_err());
        assert!(args(&["--port", "x"]).is_err());
        assert!(args(&["--threads", "0"]).is_err());
        assert!(args(&["--bogus"]).is_err());
    }
}

#[cfg(test)]
mod context_overflow_tests {
    use serde_json::Value;

    fn body(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    /// Each format's "prompt too long" is a 400 worded the way the real API words it, which
    /// is what the gateway's per-provider error mapping looks for.
    #[test]
    fn every_format_refuses_an_over_long_prompt_its_own_way() {
        let openai = crate::openai::context_overflow();
        assert_eq!(openai.status, 400);
        assert_eq!(
            body(&openai.body())["error"]["code"],
            "context_length_exceeded"
        );
        let anthropic = body(&crate::anthropic::context_overflow().body());
        assert!(anthropic["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("prompt is too long"));
        let gemini = crate::gemini::context_overflow();
        assert_eq!(body(&gemini.body())["error"]["status"], "INVALID_ARGUMENT");
        let bedrock = crate::bedrock::context_overflow();
        assert_eq!(
            (bedrock.status, bedrock.message.as_str()),
            (400, "Input is too long for requested model.")
        );
        assert!(crate::cohere::context_overflow()
            .message
            .starts_with("too many tokens"));
        assert_eq!(crate::ollama::context_overflow().status, 400);
    }
}
