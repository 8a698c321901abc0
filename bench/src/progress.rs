//! A live progress line on stderr while a long run goes on — only when stderr is a
//! terminal, so piped output and JSON stay clean.

use std::io::{IsTerminal, Write};

pub struct Progress {
    live: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            live: !quiet && std::io::stderr().is_terminal(),
        }
    }

    pub fn update(&self, text: &str) {
        if self.live {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[2K{text}");
            let _ = e.flush();
        }
    }

    pub fn done(&self) {
        if self.live {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
        }
    }
}
