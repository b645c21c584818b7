//! An `rtc` interceptor that lets inbound key frame requests reach the application.
//!
//! In `rtc` 0.21.1 inbound RTCP stops at the end of the interceptor chain unless an
//! interceptor marks it `DeliverToApplication` (media-rtc.md pitfall 3: SR/RR never surface).
//! A bridge must relay PLI (RFC 4585 sec. 6.3.1) and FIR (RFC 5104 sec. 4.3.1) to the other
//! leg's media source, so this interceptor, placed last, keeps exactly those and marks them;
//! reports and NACKs stay with the interceptors that already consumed them.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::sansio::Protocol;
use rtc::shared::error::Error;

/// Slot after `rtc`'s default interceptors (NACK, TWCC, reports), so they all see the whole
/// inbound RTCP before it is narrowed.
pub const KEYFRAME_FORWARDER_SLOT: usize = 14_000;

fn is_keyframe_request(packet: &dyn rtc::rtcp::packet::Packet) -> bool {
    let any = packet.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// Marks inbound PLI/FIR for delivery to the application and drops other inbound RTCP at
/// this point of the chain. Outbound traffic passes unchanged.
#[derive(Default)]
pub struct KeyframeRequestForwarder {
    read_queue: VecDeque<TaggedPacket>,
    write_queue: VecDeque<TaggedPacket>,
}

impl std::fmt::Debug for KeyframeRequestForwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyframeRequestForwarder")
            .field("queued_reads", &self.read_queue.len())
            .field("queued_writes", &self.write_queue.len())
            .finish()
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestForwarder {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            if !packets.iter().any(|p| is_keyframe_request(p.as_ref())) {
                // Reports and NACKs were acted on upstream; not the application's business.
                return Ok(());
            }
            let requests: Vec<Box<dyn rtc::rtcp::packet::Packet>> = packets
                .iter()
                .filter(|p| is_keyframe_request(p.as_ref()))
                .cloned()
                .collect();
            msg.message.packet = Packet::Rtcp(requests);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read_queue.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read_queue.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write_queue.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write_queue.pop_front()
    }
}

impl Interceptor for KeyframeRequestForwarder {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
