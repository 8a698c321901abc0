//! The master CLI (`-S PATH`, HAProxy's master socket): a unix socket served by a
//! thread of the master. `reload` asks the master for a reload (the same path as
//! SIGUSR2) and answers with its outcome, as HAProxy 2.7+ does: `Success=1` or
//! `Success=0`, then `--`, then the message. `show proc` lists the master and its
//! workers. One command per connection. Never touches a worker itself.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Board, READY_PATIENCE};
use crate::sys::signals;

/// Binds `path` (mode 600, a stale file replaced) and serves it from a thread.
pub fn serve(path: &Path, board: Arc<Mutex<Board>>) -> io::Result<()> {
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path)
        .map_err(|e| io::Error::other(format!("cannot bind {}: {e}", path.display())))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    std::thread::Builder::new()
        .name("ringlb-master-cli".into())
        .spawn(move || {
            for conn in l.incoming().map_while(Result::ok) {
                let board = board.clone();
                let _ = std::thread::Builder::new()
                    .name("ringlb-master-cli-conn".into())
                    .spawn(move || session(conn, &board));
            }
        })?;
    Ok(())
}

fn session(conn: UnixStream, board: &Mutex<Board>) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = String::new();
    BufReader::new(&conn).read_line(&mut line)?;
    let answer = run(line.trim(), board);
    (&conn).write_all(answer.as_bytes())
}

fn snapshot(board: &Mutex<Board>) -> Board {
    board.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Answers one command.
pub fn run(cmd: &str, board: &Mutex<Board>) -> String {
    match cmd.split_whitespace().collect::<Vec<_>>().as_slice() {
        ["reload"] => reload(board),
        ["show", "proc"] => show_proc(&snapshot(board)),
        ["help"] | [] => HELP.to_string(),
        _ => format!("Unknown command: '{cmd}'\n{HELP}"),
    }
}

const HELP: &str = "The following commands are valid at this level:
  help           : list commands
  reload         : reload the configuration; answers Success=1 or Success=0 and why
  show proc      : list the master and its workers
";

fn reload(board: &Mutex<Board>) -> String {
    let before = snapshot(board).answers;
    if let Err(e) = signals::send(std::process::id(), libc::SIGUSR2) {
        return format!("Success=0\n--\ncannot signal the master: {e}\n");
    }
    // A reload takes at most a configuration load and a worker's start.
    let end = Instant::now() + READY_PATIENCE + Duration::from_secs(10);
    while Instant::now() < end {
        let b = snapshot(board);
        if b.answers != before {
            return format!("Success={}\n--\n{}\n", u8::from(b.ok), b.message);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    "Success=0\n--\nno answer from the master in time\n".into()
}

fn show_proc(b: &Board) -> String {
    let mut out = format!(
        "#<PID>          <type>          <reloads>\n{:<15} {:<15} {}\n# workers\n",
        std::process::id(),
        "master",
        b.reloads
    );
    for (pid, generation, _) in b.workers.iter().filter(|w| !w.2) {
        out.push_str(&format!("{pid:<15} {:<15} {generation}\n", "worker"));
    }
    out.push_str("# old workers\n");
    for (pid, generation, _) in b.workers.iter().filter(|w| w.2) {
        out.push_str(&format!("{pid:<15} {:<15} {generation}\n", "worker"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_proc_lists_current_and_old_workers() {
        let board = Mutex::new(Board {
            workers: vec![(10, 1, true), (11, 2, false)],
            reloads: 1,
            ..Board::default()
        });
        let out = run("show proc", &board);
        let (current, old) = out.split_once("# old workers").unwrap();
        assert!(
            current.contains("11 ") && !current.contains("\n10 "),
            "{out}"
        );
        assert!(old.contains("10 "), "{out}");
        assert!(run("bogus", &board).starts_with("Unknown command"));
    }
}
