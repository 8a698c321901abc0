//! Dropping privileges after everything privileged is done (HAProxy's `user`,
//! `group`, `uid`, `gid`, `chroot`): names resolved with the C library's
//! reentrant lookups, then `chroot`, supplementary groups, gid, uid — in that
//! order, since each later step takes the power the earlier ones need. glibc
//! applies `setgid`/`setuid` to every thread of the process.

use std::ffi::{CStr, CString};
use std::io;
use std::path::Path;

use super::cvt;

/// Who the process becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// The user's name, for its supplementary groups (`initgroups`).
    pub name: Option<CString>,
}

fn lookup_user(name: &str) -> io::Result<(u32, u32, CString)> {
    let c = CString::new(name).map_err(|_| io::Error::other("user name contains NUL"))?;
    let mut buf = vec![0u8; 16384];
    // SAFETY: passwd is plain data; getpwnam_r writes into `pw` and `buf` (of
    // the length given) and sets `out` to `&pw` or null.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let r = libc::getpwnam_r(
            c.as_ptr(),
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut out,
        );
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        if out.is_null() {
            return Err(io::Error::other(format!("unknown user \"{name}\"")));
        }
        Ok((pw.pw_uid, pw.pw_gid, CStr::from_ptr(pw.pw_name).to_owned()))
    }
}

fn lookup_group(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::other("group name contains NUL"))?;
    let mut buf = vec![0u8; 16384];
    // SAFETY: as in `lookup_user`, for getgrnam_r.
    unsafe {
        let mut gr: libc::group = std::mem::zeroed();
        let mut out: *mut libc::group = std::ptr::null_mut();
        let r = libc::getgrnam_r(
            c.as_ptr(),
            &mut gr,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut out,
        );
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        if out.is_null() {
            return Err(io::Error::other(format!("unknown group \"{name}\"")));
        }
        Ok(gr.gr_gid)
    }
}

/// Resolves `user` and `group` (names or numbers); `None` when neither is set.
pub fn resolve(user: Option<&str>, group: Option<&str>) -> io::Result<Option<Identity>> {
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    // SAFETY: getuid/getgid take no arguments and cannot fail.
    let (cur_uid, cur_gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let (uid, mut gid, name) = match user {
        None => (cur_uid, cur_gid, None),
        Some(u) => match u.parse::<u32>() {
            Ok(n) => (n, cur_gid, None),
            Err(_) => {
                let (uid, gid, name) = lookup_user(u)?;
                (uid, gid, Some(name))
            }
        },
    };
    if let Some(g) = group {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup_group(g)?,
        };
    }
    Ok(Some(Identity { uid, gid, name }))
}

/// `chroot(dir)` then `chdir("/")`.
pub fn chroot(dir: &Path) -> io::Result<()> {
    let c = CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::other("chroot path contains NUL"))?;
    // SAFETY: `c` is a valid NUL-terminated path for both calls.
    unsafe {
        cvt(libc::chroot(c.as_ptr()))?;
        cvt(libc::chdir(c"/".as_ptr()))?;
    }
    Ok(())
}

/// Whether the process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Becomes `id` for good: supplementary groups, gid, uid. A process that is not
/// root can only "become" itself.
pub fn become_(id: &Identity) -> io::Result<()> {
    // SAFETY: plain id syscalls; `name` is a valid C string when present.
    unsafe {
        if libc::geteuid() != 0 {
            if libc::getuid() == id.uid && libc::getgid() == id.gid {
                return Ok(());
            }
            return Err(io::Error::other(format!(
                "cannot switch to uid {} gid {}: not running as root",
                id.uid, id.gid
            )));
        }
        match &id.name {
            Some(n) => cvt(libc::initgroups(n.as_ptr(), id.gid as libc::gid_t))?,
            None => cvt(libc::setgroups(0, std::ptr::null()))?,
        };
        cvt(libc::setgid(id.gid))?;
        cvt(libc::setuid(id.uid))?;
        // Dropped for good: getting root back must fail.
        if id.uid != 0 && libc::setuid(0) == 0 {
            return Err(io::Error::other(
                "privileges could be regained after setuid",
            ));
        }
    }
    Ok(())
}
