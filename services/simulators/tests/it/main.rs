//! Integration tests: the simulators served on 127.0.0.1:0, the real connectors pointed at
//! them, receipts caught by a small callback server. One binary, each test with its own
//! simulator and sandbox file.

mod helpers;
mod receipts;
mod sandbox;
mod sms;
mod templates;
mod tencent;
mod voice;
mod wechat;
