//! Core's response body as an `http_body::Body`, shared by the local server and Lambda:
//! a full body is one frame; a stream becomes one frame per chunk, sent as it is produced.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body::Frame;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use tollgate_core::ports::Task;
use tollgate_core::{GatewayResponse, ResponseBody};

pub type HostBody = UnsyncBoxBody<Bytes, Infallible>;

pub fn into_host_response(resp: GatewayResponse) -> http::Response<HostBody> {
    let (parts, body) = resp.into_parts();
    let body = match body {
        ResponseBody::Full(bytes) => Full::new(bytes).boxed_unsync(),
        ResponseBody::Stream(stream) => {
            StreamBody::new(stream.map(|b| Ok::<_, Infallible>(Frame::data(b)))).boxed_unsync()
        }
    };
    http::Response::from_parts(parts, body)
}

/// [`into_host_response`], with `tail` run after the last byte and before the body ends (the
/// client has the whole answer; only the end of the body waits for it).
pub fn into_host_response_then(resp: GatewayResponse, tail: Task) -> http::Response<HostBody> {
    let (parts, body) = resp.into_parts();
    let chunks = match body {
        ResponseBody::Full(bytes) => futures_util::stream::once(async move { bytes }).boxed(),
        ResponseBody::Stream(stream) => stream,
    };
    let tail = futures_util::stream::once(tail).filter_map(|()| async { None::<Bytes> });
    let frames = chunks
        .chain(tail)
        .map(|b| Ok::<_, Infallible>(Frame::data(b)));
    http::Response::from_parts(parts, StreamBody::new(frames).boxed_unsync())
}
