//! Kernel TLS (`tune.ssl.ktls on`): after the handshake the record layer
//! could move into the kernel (`setsockopt(TCP_ULP, "tls")`, then the
//! session keys as `TLS_TX`/`TLS_RX`), so a TLS session splices again. That
//! needs the kernel's `tls` ULP. This module only finds out whether the
//! kernel offers it and says so: the offload itself is not built, because
//! no kernel this project is tested on has the ULP (this machine's offers
//! only `mptcp`), and untested key handling is worse than none. With the
//! switch on, `check` and `run` print why TLS stays in user space.

/// The kernel's `net.ipv4.tcp_available_ulp`, as written there (empty if
/// it cannot be read).
pub fn available_ulps() -> String {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_ulp")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The notice `tune.ssl.ktls on` gets, given what the kernel offers.
pub fn unavailable_notice(ulps: &str) -> String {
    let shown = if ulps.is_empty() { "nothing" } else { ulps };
    if ulps.split_whitespace().any(|u| u == "tls") {
        "notice: tune.ssl.ktls on: the kernel offers the tls ULP, but ringlb does not hand \
         TLS sessions to it yet; TLS records stay in user space (copied, not spliced)"
            .to_string()
    } else {
        format!(
            "notice: tune.ssl.ktls on: this kernel offers no tls ULP \
             (net.ipv4.tcp_available_ulp: {shown}; `modprobe tls` where the module exists); \
             TLS records stay in user space (copied, not spliced)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_says_what_the_kernel_offers() {
        let n = unavailable_notice("mptcp");
        assert!(
            n.contains("offers no tls ULP") && n.contains("mptcp"),
            "{n}"
        );
        assert!(unavailable_notice("").contains("available_ulp: nothing"));
        assert!(unavailable_notice("mptcp tls").contains("does not hand"));
    }
}
