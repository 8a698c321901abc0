//! The end of a session: counters and the log line. Called once per session, from
//! `session::run`, after every resource has been released.

use std::rc::Rc;

use super::ctx::ShardCtx;
use super::session::SessionReport;

pub fn session_done(ctx: &Rc<ShardCtx>, report: SessionReport) {
    ctx.log_session(report);
}
