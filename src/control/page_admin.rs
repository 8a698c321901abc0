//! The stats page's admin form (`stats admin if COND`), as HAProxy 2.6's page
//! has it: an operator ticks servers of a backend, picks an action and posts
//! `s=SRV&…&action=ACT&b=#IID`; the answer is a `303 See Other` to
//! `<uri>;st=CODE`, whose page then shows HAProxy's notice for CODE. Actions
//! that map to runtime-API operations are done through the same `Ops`
//! (`ready`, `drain`, `maint`, `dhlth`, `ehlth`, `shutdown`, and the old
//! `enable`, `disable`, `stop`, `start`); forcing the health state
//! (`hrunn`, `hnolb`, `hdown`) has no runtime-API equivalent and is refused
//! with the invalid-parameters notice; agent actions change nothing (ringlb
//! has no agent checks: HAProxy answers the same for a server without one).
//! A POST without admin rights answers `;st=DENY`, another method `;st=IVAL`.

use super::ops::Ops;
use super::stats::backend_iid;
use super::status::Admin;
use crate::config::model::{Config, Frontend};
use crate::http::acl::{AclSet, Cond, Ctx, Env, Message, NoCounters, Scratch, Vars};

/// HAProxy's `stat_status_codes`: what a post did, carried in `;st=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostStatus {
    Deny,
    Done,
    Errp,
    Excd,
    None,
    Part,
    Unkn,
    Ival,
}

impl PostStatus {
    pub fn code(self) -> &'static str {
        match self {
            PostStatus::Deny => "DENY",
            PostStatus::Done => "DONE",
            PostStatus::Errp => "ERRP",
            PostStatus::Excd => "EXCD",
            PostStatus::None => "NONE",
            PostStatus::Part => "PART",
            PostStatus::Unkn => "UNKN",
            PostStatus::Ival => "IVAL",
        }
    }

    /// The code in a page URI's `;st=XXXX` (an unknown one is `UNKN`).
    pub fn from_uri(opts: &str) -> Option<PostStatus> {
        let i = opts.find(";st=")?;
        let code = opts[i + 4..].get(..4).unwrap_or("");
        Some(
            [
                PostStatus::Deny,
                PostStatus::Done,
                PostStatus::Errp,
                PostStatus::Excd,
                PostStatus::None,
                PostStatus::Part,
                PostStatus::Ival,
            ]
            .into_iter()
            .find(|s| s.code() == code)
            .unwrap_or(PostStatus::Unkn),
        )
    }

    /// HAProxy's notice at the top of the page: (row class, text).
    pub fn notice(self) -> (&'static str, &'static str) {
        match self {
            PostStatus::Done => ("active_up", "Action processed successfully."),
            PostStatus::None => ("active_going_down", "Nothing has changed."),
            PostStatus::Part => (
                "active_going_down",
                "Action partially processed.<br>Some server names are probably unknown or \
                 ambiguous (duplicated names in the backend).",
            ),
            PostStatus::Errp => (
                "active_down",
                "Action not processed because of invalid parameters.<ul>\
                 <li>The action is maybe unknown.</li>\
                 <li>Invalid key parameter (empty or too long).</li>\
                 <li>The backend name is probably unknown or ambiguous (duplicated names).</li>\
                 <li>Some server names are probably unknown or ambiguous (duplicated names in the backend).</li></ul>",
            ),
            PostStatus::Excd => (
                "active_down",
                "<b>Action not processed : the buffer couldn't store all the data.<br>\
                 You should retry with less servers at a time.</b>",
            ),
            PostStatus::Deny => ("active_down", "<b>Action denied.</b>"),
            PostStatus::Ival => (
                "active_down",
                "<b>Invalid requests (unsupported method or chunked encoded request).</b>",
            ),
            PostStatus::Unkn => ("active_no_check", "Unexpected result."),
        }
    }
}

/// `stats admin if COND`, compiled once against the section's ACLs.
pub struct AdminRule {
    acls: AclSet,
    cond: Cond,
}

impl AdminRule {
    /// `None` without `stats admin`; an error names what does not compile.
    pub fn compile(config: &Config, fe: &Frontend) -> Result<Option<AdminRule>, String> {
        let Some(text) = fe.stats.as_ref().and_then(|s| s.admin.as_deref()) else {
            return Ok(None);
        };
        let mut env = Env {
            backends: config.backends.iter().map(|b| b.name.clone()).collect(),
            ..Env::default()
        };
        let mut acls = AclSet::new();
        for (name, def) in &fe.acl {
            acls.define(name, def, &mut env).map_err(|e| e.msg)?;
        }
        let negate = fe.stats.as_ref().is_some_and(|s| s.admin_negate);
        let cond = acls
            .cond_str(text, negate, &mut env)
            .map_err(|e| format!("stats admin if {text}: {}", e.msg))?;
        Ok(Some(AdminRule { acls, cond }))
    }

    /// Whether this request (head `head`, from `client` to `local`) may act.
    pub fn allows(
        &self,
        head: &[u8],
        client: std::net::SocketAddr,
        local: std::net::SocketAddr,
    ) -> bool {
        let Some(req) = Message::parse_request(head) else {
            return false;
        };
        let vars = Vars::default();
        let ctx = Ctx {
            req: &req,
            res: None,
            client,
            local,
            tls: None,
            backend: None,
            counters: &NoCounters,
            vars: &vars,
            inspect: None,
        };
        self.cond.eval(&self.acls, &ctx, &mut Scratch::default())
    }
}

/// An `application/x-www-form-urlencoded` value or key, decoded (`+` is a
/// space; a bad `%` escape stays as it is).
fn url_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'+', ..) => out.push(b' '),
            (b'%', Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 2;
            }
            (c, ..) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a post asks: the backend and action as the form's last `b` and
/// `action` (HAProxy reads the parameters from the end), every `s`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Form {
    pub backend: Option<String>,
    pub action: Option<String>,
    pub servers: Vec<String>,
}

pub fn parse_form(body: &[u8]) -> Form {
    let text = String::from_utf8_lossy(body);
    let mut f = Form::default();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (url_decode(k), url_decode(v));
        match k.as_str() {
            "b" => f.backend = Some(v),
            "action" => f.action = Some(v),
            "s" => f.servers.push(v),
            _ => {}
        }
    }
    f
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Set(Admin),
    /// The page's old actions: only a server not already so counts.
    Enable,
    Disable,
    Stop,
    Start,
    Health(bool),
    Shutdown,
    /// An agent action: ringlb has no agent checks, so nothing changes.
    Agent,
}

fn action(name: &str) -> Option<Action> {
    Some(match name {
        "ready" => Action::Set(Admin::Ready),
        "drain" => Action::Set(Admin::Drain),
        "maint" => Action::Set(Admin::Maint),
        "dhlth" => Action::Health(false),
        "ehlth" => Action::Health(true),
        "shutdown" => Action::Shutdown,
        "enable" => Action::Enable,
        "disable" => Action::Disable,
        "stop" => Action::Stop,
        "start" => Action::Start,
        "dagent" | "eagent" | "arunn" | "adown" => Action::Agent,
        // `hrunn`, `hnolb`, `hdown` (no runtime-API equivalent) and unknown.
        _ => return None,
    })
}

/// The backend a form names: `#IID` or a name.
fn find_backend(config: &Config, b: &str) -> Option<usize> {
    match b.strip_prefix('#') {
        Some(id) => {
            let id: usize = id.parse().ok()?;
            (0..config.backends.len()).find(|&bi| backend_iid(config, bi) == id)
        }
        None => config.backends.iter().position(|be| be.name == b),
    }
}

/// Does what a form asks, as HAProxy's `stats_process_http_post` counts it.
pub fn apply(ops: &Ops<'_>, form: &Form) -> PostStatus {
    let backend = match &form.backend {
        Some(b) => match find_backend(ops.config, b) {
            Some(bi) => Some(bi),
            None => return PostStatus::Errp,
        },
        None => None,
    };
    let act = match &form.action {
        Some(a) => match action(a) {
            Some(a) => Some(a),
            None => return PostStatus::Errp,
        },
        None => None,
    };
    let (Some(b), Some(act)) = (backend, act) else {
        return PostStatus::None;
    };
    let (mut total, mut altered) = (0, 0);
    for name in &form.servers {
        let Some(s) = ops.config.backends[b]
            .servers
            .iter()
            .position(|sv| &sv.name == name)
        else {
            total += 1;
            continue;
        };
        // The old actions set or clear one of HAProxy's two flags, and count
        // only when it was not already so.
        let (maint, drain) = ops.flags(b, s);
        let done = match act {
            Action::Set(to) => {
                ops.set_admin(b, s, to);
                true
            }
            Action::Disable if !maint => ops.set_flags(b, s, Some(true), None),
            Action::Enable if maint => ops.set_flags(b, s, Some(false), None),
            Action::Stop if !drain => ops.set_flags(b, s, None, Some(true)),
            Action::Start if drain => ops.set_flags(b, s, None, Some(false)),
            Action::Health(on) if ops.has_checks(b, s) => {
                ops.set_checks(b, s, on);
                true
            }
            Action::Shutdown => {
                ops.kill_sessions(b, s);
                true
            }
            _ => false,
        };
        if done {
            altered += 1;
            total += 1;
        }
    }
    match (total, altered) {
        (0, _) => PostStatus::None,
        (_, 0) => PostStatus::Errp,
        (t, a) if t == a => PostStatus::Done,
        _ => PostStatus::Part,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_as_browsers_send_them() {
        let f = parse_form(b"s=a&s=b%20c&s=d+e&action=maint&b=%233");
        assert_eq!(
            f,
            Form {
                backend: Some("#3".into()),
                action: Some("maint".into()),
                servers: vec!["a".into(), "b c".into(), "d e".into()],
            }
        );
        assert_eq!(url_decode("100%"), "100%");
        assert_eq!(url_decode("%zz"), "%zz");
    }

    #[test]
    fn status_codes_round_trip_through_the_uri() {
        assert_eq!(PostStatus::from_uri(";st=DONE"), Some(PostStatus::Done));
        assert_eq!(
            PostStatus::from_uri(";norefresh;st=DENY"),
            Some(PostStatus::Deny)
        );
        assert_eq!(PostStatus::from_uri(";st=WHAT"), Some(PostStatus::Unkn));
        assert_eq!(PostStatus::from_uri(";csv"), None);
    }

    #[test]
    fn only_actions_with_a_runtime_api_equivalent_are_taken() {
        assert_eq!(action("maint"), Some(Action::Set(Admin::Maint)));
        assert_eq!(action("dhlth"), Some(Action::Health(false)));
        assert_eq!(action("hdown"), None);
        assert_eq!(action("bogus"), None);
        assert_eq!(action("eagent"), Some(Action::Agent));
    }
}
