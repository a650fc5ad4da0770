//! The async handler's reply, encoded for the transport that carries it: whole over
//! TCP, and over UDP within the client's size, as an empty answer with TC set when
//! it does not fit.

use std::sync::{Arc, Mutex};

use hickory_proto::op::{Header, HeaderCounts, Message, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::net::NetError;
use hickory_server::server::{ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// The `proto` label of the request metrics.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// Keeps the encoded reply of one query for the transport to send.
#[derive(Clone)]
pub struct Captured {
    slot: Arc<Mutex<Option<Vec<u8>>>>,
    transport: Transport,
}

impl Captured {
    pub fn new(transport: Transport) -> Self {
        Captured {
            slot: Arc::new(Mutex::new(None)),
            transport,
        }
    }

    /// The reply, once the handler has sent it.
    pub fn take(&self) -> Option<Vec<u8>> {
        self.slot.lock().ok()?.take()
    }
}

#[async_trait::async_trait]
impl ResponseHandler for Captured {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let limit = match self.transport {
            Transport::Udp => response.edns().map_or(512, |e| e.max_payload().max(512)),
            Transport::Tcp => u16::MAX,
        };
        let mut metadata = *response.metadata();
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(u16::MAX);
        let (mut bytes, result) = match response.destructive_emit(&mut encoder) {
            Ok(info) => (bytes, Ok(info)),
            Err(error) => {
                // Too big even for TCP, say: the client still gets an answer.
                tracing::debug!(%error, "cannot encode a reply; sending SERVFAIL");
                metadata.response_code = ResponseCode::ServFail;
                let header = Header {
                    metadata,
                    counts: HeaderCounts::default(),
                };
                let mut out = Vec::with_capacity(12);
                header
                    .emit(&mut BinEncoder::new(&mut out))
                    .map_err(NetError::from)?;
                (out, Ok(ResponseInfo::from(header)))
            }
        };
        if bytes.len() > usize::from(limit) {
            // Cutting the encoding at the limit would leave half a record and no OPT.
            bytes = truncated(&bytes);
        }
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Some(bytes);
        }
        result
    }
}

/// An encoded reply too big for the client, as the empty answer with TC set that
/// sends it to TCP: header, question and OPT record (when there was one) kept.
fn truncated(full: &[u8]) -> Vec<u8> {
    let rebuilt = Message::from_vec(full).ok().and_then(|mut message| {
        message.answers.clear();
        message.authorities.clear();
        message.additionals.clear();
        message.metadata.truncation = true;
        message.to_vec().ok()
    });
    rebuilt.unwrap_or_else(|| {
        // Our own encoding always decodes; should it not, the header alone still says TC.
        let mut header = full.get(..12).map_or_else(|| vec![0; 12], <[u8]>::to_vec);
        header[2] |= 0x02;
        header[4..].fill(0);
        header
    })
}
