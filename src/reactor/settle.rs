//! A turn's work after the sockets: due timers, then settling (routing WebSocket requests
//! to the gateway, carrying out the engines' commands, flushing, re-arming and reaping the
//! touched streams), each within its phase of the turn's budget (`budget.rs`).

use std::time::Instant;

use mio::{Interest, Token};

use crate::gateway::GatewayCommand;
use crate::switchboard::Command;
use crate::ws::WsEvent;

use super::budget::Work;
use super::phases::Phase;
use super::token::{self, TokenKind};
use super::Reactor;

impl Reactor {
    /// Runs the WebSocket timers that are due, and the engines' when `engines_deadline`
    /// (their [`poll_timeout`](crate::switchboard::Switchboard::poll_timeout) before the
    /// poll) is, within the turn's [`Work::Timers`] budget: what is not run stays due for the
    /// next turn. Which of the two goes first alternates by turn, so that neither can take
    /// every turn's share.
    pub(super) fn run_timers(&mut self, now: Instant, engines_deadline: Option<Instant>) {
        self.engine_timers_first = !self.engine_timers_first;
        if self.engine_timers_first {
            self.run_engine_timers(now, engines_deadline);
            self.run_ws_timers(now);
        } else {
            self.run_ws_timers(now);
            self.run_engine_timers(now, engines_deadline);
        }
        self.msrp.handle_timeout(now, self.poll.registry());
        if let Some(n) = &mut self.notify {
            n.handle_timeout(now);
        }
    }

    fn run_ws_timers(&mut self, now: Instant) {
        while self.timers.earliest().is_some_and(|t| t <= now) && self.budget.may(Work::Timers) {
            let Some(key) = self.timers.pop_due(now) else {
                break;
            };
            let Some(s) = self.streams.get_mut(key) else {
                continue;
            };
            s.armed_timeout = None;
            s.ws.handle_timeout(now);
            self.touched.push(key);
        }
    }

    fn run_engine_timers(&mut self, now: Instant, engines_deadline: Option<Instant>) {
        if engines_deadline.is_some_and(|t| t <= now) {
            let budget = &mut self.budget;
            self.board
                .handle_timeout_while(now, &mut || budget.may(Work::Timers));
        }
    }

    /// Routes events until every engine is quiet, then flushes, re-arms and reaps.
    pub(super) fn settle(&mut self, now: Instant) {
        // Streams whose requests waited for budget go first.
        if !self.ws_backlog.is_empty() {
            let mut touched = std::mem::take(&mut self.ws_backlog);
            touched.append(&mut self.touched);
            self.touched = touched;
        }
        loop {
            let mut progressed = false;
            let mut i = 0;
            while i < self.touched.len() {
                let key = self.touched[i];
                i += 1;
                progressed |= self.route_ws_events(now, key);
            }
            self.phases.lap(Phase::Route);
            progressed |= self.run_commands(now);
            self.phases.lap(Phase::Commands);
            if !progressed {
                break;
            }
        }
        // Streams left unflushed by the last turn first (in the order they were left), then
        // this turn's, each once.
        let carried = std::mem::take(&mut self.flush_backlog);
        let mut touched = std::mem::take(&mut self.touched);
        touched.sort_unstable();
        touched.dedup();
        if !carried.is_empty() {
            let mut sorted = carried.clone();
            sorted.sort_unstable();
            touched.retain(|k| sorted.binary_search(k).is_err());
        }
        for &key in carried.iter().chain(touched.iter()) {
            if self.budget.may(Work::Flush) {
                self.flush_and_rearm(now, key);
            } else {
                self.flush_backlog.push(key);
            }
        }
        touched.clear();
        // Reaping may have queued text for other streams: flushed next turn.
        for key in self.touched.drain(..) {
            if !self.flush_backlog.contains(&key) {
                self.flush_backlog.push(key);
            }
        }
        self.touched = touched;
        self.phases.lap(Phase::Flush);
        while let Some(token) = self.sip.resumed.pop() {
            self.read_again(token);
        }
    }

    /// Hands a stream's WebSocket events to the switchboard. Returns whether any arrived.
    pub(super) fn route_ws_events(&mut self, now: Instant, key: usize) -> bool {
        let Some(s) = self.streams.get_mut(key) else {
            return false;
        };
        let mut any = false;
        let mut endpoint = None;
        loop {
            if !s.ws.has_event() {
                s.backlog = false;
                break;
            }
            if !self.budget.may(Work::Route) {
                // The rest waits for the next turn, before anything else it reads.
                s.backlog = true;
                if !self.ws_backlog.contains(&key) {
                    self.ws_backlog.push(key);
                }
                break;
            }
            let Some(event) = s.ws.poll_event() else {
                break;
            };
            any = true;
            match event {
                WsEvent::Open { dialect, origin } => {
                    log::info!(
                        "conn={} websocket open, {} origin={}",
                        s.log_id,
                        dialect.subprotocol(),
                        origin.as_deref().unwrap_or("-")
                    );
                    self.stats.session_opened(dialect, s.tls.is_some());
                    let conn = token::encode(TokenKind::WsConn, key, s.generation).0;
                    self.board.handle_client_open(now, conn, dialect, s.log_id);
                    s.client = Some(conn);
                    s.dialect = Some(dialect);
                }
                WsEvent::Endpoint { endpoint: e, head } => endpoint = Some((e, head)),
                WsEvent::Text(text) => {
                    if let Some(conn) = s.client {
                        self.board.handle_client_text(now, conn, &text);
                    }
                }
                WsEvent::Closed(reason) => {
                    log::info!("conn={} websocket closed: {reason:?}", s.log_id);
                    if let Some(conn) = s.client.take() {
                        self.board.handle_client_closed(now, conn);
                    }
                }
            }
        }
        if let Some((e, head)) = endpoint {
            self.answer_endpoint(now, key, e, head);
        }
        any
    }

    pub(super) fn flush_and_rearm(&mut self, now: Instant, key: usize) {
        let Some(s) = self.streams.get_mut(key) else {
            return;
        };
        s.write_ready(now);
        if s.is_finished() && !s.backlog {
            self.reap(now, key);
            return;
        }
        let resumed = s
            .take_resumed()
            .then(|| token::encode(TokenKind::WsConn, key, s.generation));
        let wanted = if s.wants_write() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if wanted != s.interest {
            let token = token::encode(TokenKind::WsConn, key, s.generation);
            if self
                .poll
                .registry()
                .reregister(&mut s.socket, token, wanted)
                .is_ok()
            {
                s.interest = wanted;
            }
        }
        let deadline = s.ws.poll_timeout();
        if deadline != s.armed_timeout {
            s.armed_timeout = deadline;
            self.timers.set(key, deadline);
        }
        if let Some(token) = resumed {
            self.read_again(token);
        }
    }

    /// Drops a finished connection, telling the gateway if it had not heard yet.
    pub(super) fn reap(&mut self, now: Instant, key: usize) {
        if !self.streams.contains(key) {
            return;
        }
        let mut s = self.streams.remove(key);
        self.timers.cancel(key);
        if let Some(conn) = s.client.take() {
            self.board.handle_client_closed(now, conn);
        }
        s.shutdown();
        let _ = self.poll.registry().deregister(&mut s.socket);
        log::debug!("conn={} connection from {} released", s.log_id, s.peer);
        // The gateway may have produced output (un-REGISTERs, other clients) while cleaning up.
        self.run_commands(now);
    }

    /// Carries out the engines' socket work, within the turn's [`Work::Commands`] budget
    /// (what is left stays queued, in order, for the next turn). Returns whether there was
    /// anything.
    pub(super) fn run_commands(&mut self, now: Instant) -> bool {
        self.carry_out_commands(now, true)
    }

    /// Carries out every command queued, and every one that follows from them, at once.
    pub(super) fn run_all_commands(&mut self, now: Instant) {
        while self.carry_out_commands(now, false) {}
    }

    /// [`run_commands`](Self::run_commands), `budgeted` or not.
    fn carry_out_commands(&mut self, now: Instant, budgeted: bool) -> bool {
        let may = |budget: &mut super::budget::TurnBudget| !budgeted || budget.may(Work::Commands);
        let mut any = false;
        while self.board.has_command() && may(&mut self.budget) {
            let Some(command) = self.board.poll_output() else {
                break;
            };
            any = true;
            match command {
                Command::Gateway(GatewayCommand::Send { conn, text }) => {
                    let Some(parts) = token::decode(Token(conn)) else {
                        continue;
                    };
                    if let Some(s) = self.streams.get_mut(parts.key) {
                        if s.generation == parts.generation {
                            s.ws.send_text(now, text);
                            self.touched.push(parts.key);
                        }
                    }
                }
                Command::Msrp { id, transmit } => self.msrp.transmit(
                    id,
                    transmit,
                    now,
                    self.poll.registry(),
                    &mut self.generations,
                    &mut self.board,
                ),
                Command::Xcap(t) => self.xcap.transmit(
                    t,
                    now,
                    self.poll.registry(),
                    &mut self.generations,
                    &mut self.board,
                ),
                Command::Sip(t) => self.sip.transmit(
                    t,
                    now,
                    self.poll.registry(),
                    &mut self.generations,
                    &mut self.board,
                ),
                Command::Gateway(GatewayCommand::OpenMedia { media, sockets }) => {
                    self.phases.lap(Phase::Commands);
                    if let Err(e) = self.media.open(
                        self.poll.registry(),
                        &mut self.generations,
                        media,
                        &sockets,
                    ) {
                        log::warn!("media: {e}");
                        self.board.handle_media_unavailable(now, media);
                    }
                    self.phases.lap(Phase::OpenMedia);
                }
                Command::Gateway(GatewayCommand::Close { conn }) => {
                    let Some(parts) = token::decode(Token(conn)) else {
                        continue;
                    };
                    if self
                        .streams
                        .get(parts.key)
                        .is_some_and(|s| s.generation == parts.generation)
                    {
                        self.close_client(now, parts.key);
                    }
                }
                Command::Gateway(GatewayCommand::CloseMedia { media }) => {
                    // The bridge's last datagrams (RTCP BYE, DTLS close_notify) go first.
                    self.media.flush(media, &mut self.board.bridges);
                    self.media.close(self.poll.registry(), media);
                    self.board.handle_media_closed(media);
                }
            }
        }
        while self.board.bridges.has_dirty() && may(&mut self.budget) {
            if let Some(media) = self.board.bridges.poll_dirty() {
                self.media.flush(media, &mut self.board.bridges);
            }
        }
        // Draining can surface bridge events (DTLS up, ICE failed): the gateway acts on them,
        // which may queue more work for the next round.
        if self.board.bridges.has_events() && may(&mut self.budget) {
            any |= self.board.route_bridge_events(now);
        }
        if self.board.msrps().has_dirty() && may(&mut self.budget) {
            any |= self.board.route_msrps(now);
        }
        any
    }
}
