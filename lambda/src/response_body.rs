//! Core's response body as an `http_body::Body`, shared by the local server and Lambda:
//! a full body is one frame; a stream becomes one frame per chunk, sent as it is produced.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body::Frame;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
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
