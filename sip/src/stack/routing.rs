//! Moving messages between the layers: transport -> transactions -> (registrations, calls,
//! UAS core), transactions -> transport, location -> registrations and calls, until every
//! layer is quiet.

use std::time::Instant;

use super::SipStack;
use crate::call::TxnFailure;
use crate::dialog::DialogKey;
use crate::locate::LocateEvent;
use crate::msg::SipMessage;
use crate::txn::{TxnEvent, TxnId};

impl SipStack {
    /// Moves work between the layers until every one is quiet.
    pub(super) fn drive(&mut self, now: Instant) {
        self.deadline_stale = true;
        loop {
            let mut progressed = false;
            while let Some(inbound) = self.transport.poll_inbound() {
                progressed = true;
                match inbound.message {
                    SipMessage::Response(response) => self.txn.handle_response(now, response),
                    SipMessage::Request(request) => {
                        // A new INVITE's call needs the flow it came on: its transaction
                        // event is produced right here, so drain it while the source is known.
                        self.inbound_source = Some(inbound.source);
                        self.txn.handle_request(now, request, inbound.source);
                        self.drain_txn_events(now);
                        self.inbound_source = None;
                    }
                }
            }
            progressed |= self.drain_txn_events(now);
            while let Some(t) = self.txn.poll_transmit() {
                progressed = true;
                if self.transport.send(now, &t.target, t.bytes).is_err() {
                    self.txn.handle_transport_error(now, t.txn);
                }
            }
            while let Some(LocateEvent { lookup, result }) = self.locator.poll_event() {
                progressed = true;
                if let Some(request) = self.request_lookups.remove(&lookup) {
                    self.request_located(request, result);
                } else if let Some(call) = self.call_lookups.remove(&lookup) {
                    if let Some(e) = self.call_entry(call) {
                        e.lookup = None;
                        e.call.handle_located(result);
                        self.dirty_calls.push(call);
                    }
                } else if let Some(reg) = self.reg_lookups.remove(&lookup) {
                    if let Some(e) = self.registrations.get_mut(reg.0) {
                        e.lookup = None;
                        e.reg.handle_located(now, result);
                        self.dirty_regs.push(reg);
                    }
                }
            }
            while let Some(reg) = self.dirty_regs.pop() {
                progressed = true;
                self.run_registration(now, reg);
            }
            while let Some(call) = self.dirty_calls.pop() {
                progressed = true;
                self.run_call(now, call);
            }
            while let Some(request) = self.dirty_requests.pop() {
                progressed = true;
                self.run_request(now, request);
            }
            if !progressed {
                return;
            }
        }
    }

    /// Hands every transaction event to its owner: a call, a registration, or the UAS core
    /// for new requests. Returns whether there was any.
    fn drain_txn_events(&mut self, now: Instant) -> bool {
        let mut any = false;
        while let Some(event) = self.txn.poll_event() {
            any = true;
            match event {
                TxnEvent::Response { txn, response } => {
                    if let Some(&request) = self.request_txns.get(&txn) {
                        if let Some(r) = self.request_entry(request) {
                            r.handle_response(txn, &response);
                            self.dirty_requests.push(request);
                        }
                    } else if let Some(&call) = self.call_txns.get(&txn) {
                        if let Some(e) = self
                            .calls
                            .get_mut(call.key)
                            .filter(|e| e.serial == call.serial)
                        {
                            e.call.handle_response(now, txn, &response, &mut self.rng);
                            self.dirty_calls.push(call);
                        }
                    } else if let Some(&reg) = self.reg_txns.get(&txn) {
                        if let Some(e) = self.registrations.get_mut(reg.0) {
                            if response.status() >= 200 {
                                e.txn = None;
                            }
                            e.reg.handle_response(now, &response);
                            self.dirty_regs.push(reg);
                        }
                    }
                }
                TxnEvent::Timeout { txn } => self.txn_failed(now, txn, TxnFailure::Timeout),
                TxnEvent::TransportError { txn } => {
                    self.txn_failed(now, txn, TxnFailure::TransportError)
                }
                TxnEvent::Terminated { txn } => {
                    self.reg_txns.remove(&txn);
                    self.request_txns.remove(&txn);
                    self.forget_incoming(txn);
                    if let Some(call) = self.call_txns.remove(&txn) {
                        if let Some(e) = self.call_entry(call) {
                            e.txns.retain(|t| *t != txn);
                        }
                    }
                }
                TxnEvent::Request { txn, request } => self.handle_request(now, txn, &request),
                TxnEvent::Cancel {
                    txn,
                    cancels,
                    request,
                } => {
                    // RFC 3261 section 9.2: 200 for a CANCEL that matched, else 481.
                    let (status, reason) = match cancels {
                        Some(_) => (200, "OK"),
                        None => (481, "Call/Transaction Does Not Exist"),
                    };
                    self.respond(now, txn, &request, status, reason, &[]);
                    if let Some(call) = cancels.and_then(|t| self.call_txns.get(&t).copied()) {
                        if let Some(e) = self.call_entry(call) {
                            if let Ok(c) = e.call.incoming_mut() {
                                c.handle_cancel();
                            }
                            self.dirty_calls.push(call);
                        }
                    }
                }
                // 2xx ACKs belong to dialogs (RFC 3261 section 13.3.1.4); others are dropped.
                TxnEvent::Ack { request, .. } => {
                    let call = DialogKey::of_incoming(&request)
                        .and_then(|key| self.dialogs.get(&key).copied());
                    if let Some(call) = call {
                        if let Some(e) = self.call_entry(call) {
                            e.call.handle_ack(&request);
                            self.dirty_calls.push(call);
                        }
                    }
                }
            }
        }
        any
    }

    /// A transaction timed out (Timer B/F/H) or its transport failed.
    fn txn_failed(&mut self, now: Instant, txn: TxnId, failure: TxnFailure) {
        if let Some(&request) = self.request_txns.get(&txn) {
            if let Some(r) = self.request_entry(request) {
                r.handle_failure(txn, failure == TxnFailure::TransportError);
                self.dirty_requests.push(request);
            }
        } else if let Some(&call) = self.call_txns.get(&txn) {
            if let Some(e) = self.call_entry(call) {
                e.call.handle_txn_failure(txn, failure);
                self.dirty_calls.push(call);
            }
        } else if let Some(&reg) = self.reg_txns.get(&txn) {
            if let Some(e) = self.registrations.get_mut(reg.0) {
                e.txn = None;
                e.reg
                    .handle_no_response(now, failure == TxnFailure::TransportError);
                self.dirty_regs.push(reg);
            }
        }
    }
}
