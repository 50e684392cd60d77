//! The Lambda host: function-URL (and API Gateway / ALB) events in, streamed responses out
//! (`InvokeMode: RESPONSE_STREAM`), so SSE reaches the client as it is produced.
//!
//! Lambda freezes the environment once an invocation's response is complete, so work left
//! after a response (the request's ledger) cannot run in the background: each invocation gets
//! its own [`InvocationWork`], and the response body ends only after that work is done (the
//! client has every byte of the answer by then; only the end of the body waits).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use lambda_http::{service_fn, Body, Error, Request};
use tollgate_core::ports::{AfterResponse, Task};
use tollgate_core::Gateway;

use crate::response_body::{into_host_response_then, HostBody};

pub async fn run(gateway: Arc<Gateway>) -> Result<(), String> {
    let runtime = tokio::runtime::Handle::current();
    let handler = service_fn(move |event: Request| {
        let gateway = Arc::clone(&gateway);
        let work = InvocationWork::new(runtime.clone());
        async move {
            let after: Arc<dyn AfterResponse> = work.clone();
            let response = gateway.handle_scoped(into_core_request(event), after).await;
            Ok::<http::Response<HostBody>, Error>(into_host_response_then(
                response,
                Box::pin(work.drain()),
            ))
        }
    });
    lambda_http::run_with_streaming_response(handler)
        .await
        .map_err(|e| format!("lambda runtime failed: {e}"))
}

/// Work one invocation left after its response, run before its body ends.
pub struct InvocationWork {
    tasks: Mutex<Vec<Task>>,
    /// Where leftover work goes if the body is dropped before its end (the client left).
    runtime: tokio::runtime::Handle,
}

impl InvocationWork {
    pub fn new(runtime: tokio::runtime::Handle) -> Arc<Self> {
        Arc::new(InvocationWork {
            tasks: Mutex::new(Vec::new()),
            runtime,
        })
    }

    /// Runs every task deferred so far, and any they defer in turn.
    pub async fn drain(self: Arc<Self>) {
        loop {
            let batch: Vec<Task> = match self.tasks.lock() {
                Ok(mut tasks) => tasks.drain(..).collect(),
                Err(_) => return,
            };
            if batch.is_empty() {
                return;
            }
            futures_util::future::join_all(batch).await;
        }
    }
}

impl AfterResponse for InvocationWork {
    fn defer(&self, task: Task) {
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(task);
        }
    }
}

impl Drop for InvocationWork {
    /// The body was dropped before its end (the client left): what is left runs on the
    /// runtime, as long as the environment lives.
    fn drop(&mut self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            for task in tasks.drain(..) {
                self.runtime.spawn(task);
            }
        }
    }
}

/// lambda_http decodes base64 bodies already; only the body type differs from core's.
fn into_core_request(event: Request) -> http::Request<Bytes> {
    let (parts, body) = event.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(s) => Bytes::from(s),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    http::Request::from_parts(parts, bytes)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use tollgate_core::ResponseBody;

    use super::*;

    #[test]
    fn the_body_ends_only_after_the_invocation_work() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let work = InvocationWork::new(tokio::runtime::Handle::current());
            let done = Arc::new(AtomicUsize::new(0));
            let flag = Arc::clone(&done);
            work.defer(Box::pin(async move {
                tokio::task::yield_now().await;
                flag.fetch_add(1, Ordering::SeqCst);
            }));
            let response = http::Response::new(ResponseBody::Full(Bytes::from_static(b"{}")));
            let body =
                into_host_response_then(response, Box::pin(Arc::clone(&work).drain())).into_body();
            assert_eq!(
                done.load(Ordering::SeqCst),
                0,
                "not before the body is read"
            );
            let bytes = body.collect().await.unwrap().to_bytes();
            assert_eq!(&bytes[..], b"{}");
            assert_eq!(done.load(Ordering::SeqCst), 1, "done when the body ended");
        });
    }

    #[test]
    fn work_left_by_a_dropped_body_still_runs() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let done = Arc::new(AtomicUsize::new(0));
            {
                let work = InvocationWork::new(tokio::runtime::Handle::current());
                let flag = Arc::clone(&done);
                work.defer(Box::pin(async move {
                    flag.fetch_add(1, Ordering::SeqCst);
                }));
                let response = http::Response::new(ResponseBody::Full(Bytes::from_static(b"{}")));
                let body = into_host_response_then(response, Box::pin(work.drain()));
                drop(body);
            }
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
            assert_eq!(done.load(Ordering::SeqCst), 1);
        });
    }
}
