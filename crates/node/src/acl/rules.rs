//! The ACL rule parser (Redis's ACLSetUser / ACLSetSelector: `on`, `>pass`, `~pattern`,
//! `%R~pattern`, `&channel`, `+cmd|firstarg`, `+@category`, `(selector)`, `reset`...) and its
//! inverse, the rule strings of ACL LIST / GETUSER / aclfile (ACLDescribeUser).

use super::categories::{acl_cmds, category_bit, lookup_cmd, CATEGORIES};
use super::model::{
    hash_password, pubsub_default, Selector, User, FUTURE_BIT, PERM_ALL, PERM_READ, PERM_WRITE, SEL_ALLCHANNELS,
    SEL_ALLKEYS, USER_FLAG_NAMES, USER_NOPASS, USER_OFF, USER_ON, USER_SANITIZE, USER_SKIP_SANITIZE,
};

#[derive(Debug)]
pub(super) enum SetErr {
    NoEnt,
    Inval,
    Exist,
    IsDir,
    NoDev,
    BadMsg,
    Child,
}

pub(super) fn set_err_text(e: &SetErr) -> &'static str {
    match e {
        SetErr::NoEnt => "Unknown command or category name in ACL",
        SetErr::Inval => "Syntax error",
        SetErr::Exist => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
        SetErr::IsDir => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
        SetErr::NoDev => "The password you are trying to remove from the user does not exist",
        SetErr::BadMsg => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
        SetErr::Child => "Allowing first-arg of a subcommand is not supported",
    }
}

pub fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&c| c.is_ascii_whitespace() || c == 0)
}

fn valid_hash(h: &[u8]) -> bool {
    h.len() == 64 && h.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

impl Selector {
    /// Redis's ACLSetSelector.
    fn apply(&mut self, op: &[u8]) -> Result<(), SetErr> {
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if is("allkeys") || op == b"~*" {
            self.flags |= SEL_ALLKEYS;
            self.patterns.clear();
        } else if is("resetkeys") {
            self.flags &= !SEL_ALLKEYS;
            self.patterns.clear();
        } else if is("allchannels") || op == b"&*" {
            self.flags |= SEL_ALLCHANNELS;
            self.channels.clear();
        } else if is("resetchannels") {
            self.flags &= !SEL_ALLCHANNELS;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.all_commands(true);
        } else if is("nocommands") || is("-@all") {
            self.all_commands(false);
        } else if op.first() == Some(&b'~') || op.first() == Some(&b'%') {
            if self.flags & SEL_ALLKEYS != 0 {
                return Err(SetErr::Exist);
            }
            let mut fl = 0u8;
            let mut offset = 1;
            if op[0] == b'%' {
                let mut ok = true;
                while offset < op.len() {
                    let c = op[offset].to_ascii_uppercase();
                    if c == b'R' && fl & PERM_READ == 0 {
                        fl |= PERM_READ;
                    } else if c == b'W' && fl & PERM_WRITE == 0 {
                        fl |= PERM_WRITE;
                    } else if op[offset] == b'~' {
                        offset += 1;
                        break;
                    } else {
                        ok = false;
                        break;
                    }
                    offset += 1;
                }
                if fl == 0 || !ok {
                    return Err(SetErr::Inval);
                }
            } else {
                fl = PERM_ALL;
            }
            let pat = &op[offset.min(op.len())..];
            if has_spaces(pat) {
                return Err(SetErr::Inval);
            }
            match self.patterns.iter_mut().find(|(p, _)| p == pat) {
                Some(p) => p.1 |= fl,
                None => self.patterns.push((pat.to_vec(), fl)),
            }
            self.flags &= !SEL_ALLKEYS;
        } else if op.first() == Some(&b'&') {
            if self.flags & SEL_ALLCHANNELS != 0 {
                return Err(SetErr::IsDir);
            }
            let pat = &op[1..];
            if has_spaces(pat) {
                return Err(SetErr::Inval);
            }
            if !self.channels.iter().any(|c| c == pat) {
                self.channels.push(pat.to_vec());
            }
            self.flags &= !SEL_ALLCHANNELS;
        } else if op.first() == Some(&b'+') && op.get(1) != Some(&b'@') {
            let rest = &op[1..];
            match rest.iter().rposition(|&c| c == b'|') {
                None => {
                    let id = lookup_cmd(rest).ok_or(SetErr::NoEnt)?;
                    self.change_perm(id, true);
                }
                Some(bar) => {
                    let (copy, sub) = (&rest[..bar], &rest[bar + 1..]);
                    let id = lookup_cmd(copy).ok_or(SetErr::NoEnt)?;
                    let c = &acl_cmds()[id];
                    if c.parent >= 0 {
                        return Err(SetErr::Child);
                    }
                    if sub.is_empty() {
                        return Err(SetErr::Inval);
                    }
                    if c.subs.1 > c.subs.0 {
                        let sid = lookup_cmd(rest).ok_or(SetErr::NoEnt)?;
                        self.change_perm(sid, true);
                    } else {
                        let v = self.firstargs.entry(id).or_default();
                        if !v.iter().any(|x| x.eq_ignore_ascii_case(sub)) {
                            v.push(sub.to_vec());
                        }
                    }
                }
            }
        } else if op.first() == Some(&b'-') && op.get(1) != Some(&b'@') {
            let id = lookup_cmd(&op[1..]).ok_or(SetErr::NoEnt)?;
            self.change_perm(id, false);
        } else if (op.first() == Some(&b'+') || op.first() == Some(&b'-')) && op.get(1) == Some(&b'@') {
            let cflag = category_bit(&op[2..]).ok_or(SetErr::NoEnt)?;
            self.set_category(cflag, op[0] == b'+');
        } else {
            return Err(SetErr::Inval);
        }
        Ok(())
    }

    /// ACLDescribeSelectorCommandRules.
    pub fn describe_commands(&self) -> String {
        let mut rules = String::new();
        let mut fake = Selector::new(0);
        let additive = if self.bit(FUTURE_BIT) {
            rules.push_str("+@all ");
            fake.all_commands(true);
            false
        } else {
            rules.push_str("-@all ");
            fake.all_commands(false);
            true
        };
        let mut temp = Selector::new(0);
        temp.allowed = self.allowed;
        let mut applied = [false; 21];
        loop {
            let mut best: Option<usize> = None;
            let (mut mindiff, mut maxsame) = (i32::MAX as usize, 0usize);
            for (j, _) in CATEGORIES.iter().enumerate() {
                if applied[j] {
                    continue;
                }
                let (on, off) = temp.count_category(1 << j);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(b) = best else { break };
            fake.set_category(1 << b, additive);
            temp.set_category(1 << b, !additive);
            rules.push_str(if additive { "+@" } else { "-@" });
            rules.push_str(CATEGORIES[b]);
            rules.push(' ');
            applied[b] = true;
        }
        // Single commands, then first-args.
        for (i, c) in acl_cmds().iter().enumerate() {
            if c.parent >= 0 {
                continue;
            }
            self.describe_single(i, &mut fake, &mut rules);
            for s in c.subs.0..c.subs.1 {
                self.describe_single(s, &mut fake, &mut rules);
            }
            if !self.bit(i) {
                if let Some(v) = self.firstargs.get(&i) {
                    for fa in v {
                        rules.push('+');
                        rules.push_str(c.name);
                        rules.push('|');
                        rules.push_str(&String::from_utf8_lossy(fa));
                        rules.push(' ');
                    }
                }
            }
        }
        rules.pop();
        rules
    }
    fn describe_single(&self, i: usize, fake: &mut Selector, rules: &mut String) {
        let (u, f) = (self.bit(i), fake.bit(i));
        if u != f {
            rules.push(if u { '+' } else { '-' });
            rules.push_str(acl_cmds()[i].name);
            rules.push(' ');
            fake.change_perm(i, u);
        }
    }
    fn pattern_string(p: &(Vec<u8>, u8)) -> String {
        let pre = match p.1 {
            PERM_READ => "%R~",
            PERM_WRITE => "%W~",
            _ => "~",
        };
        format!("{}{}", pre, String::from_utf8_lossy(&p.0))
    }
    /// ACLDescribeSelector (ACL LIST form).
    fn describe(&self) -> String {
        let mut s = String::new();
        if self.flags & SEL_ALLKEYS != 0 {
            s.push_str("~* ");
        } else {
            for p in &self.patterns {
                s.push_str(&Self::pattern_string(p));
                s.push(' ');
            }
        }
        if self.flags & SEL_ALLCHANNELS != 0 {
            s.push_str("&* ");
        } else {
            s.push_str("resetchannels ");
            for c in &self.channels {
                s.push('&');
                s.push_str(&String::from_utf8_lossy(c));
                s.push(' ');
            }
        }
        s.push_str(&self.describe_commands());
        s
    }
    pub fn keys_string(&self) -> String {
        if self.flags & SEL_ALLKEYS != 0 {
            return "~*".into();
        }
        self.patterns.iter().map(Self::pattern_string).collect::<Vec<_>>().join(" ")
    }
    pub fn channels_string(&self) -> String {
        if self.flags & SEL_ALLCHANNELS != 0 {
            return "&*".into();
        }
        self.channels.iter().map(|c| format!("&{}", String::from_utf8_lossy(c))).collect::<Vec<_>>().join(" ")
    }
}

impl User {
    /// Redis's ACLSetUser.
    pub(super) fn apply(&mut self, op: &[u8]) -> Result<(), SetErr> {
        if op.is_empty() {
            return Ok(());
        }
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if is("on") {
            self.flags = (self.flags | USER_ON) & !USER_OFF;
        } else if is("off") {
            self.flags = (self.flags | USER_OFF) & !USER_ON;
        } else if is("skip-sanitize-payload") {
            self.flags = (self.flags | USER_SKIP_SANITIZE) & !USER_SANITIZE;
        } else if is("sanitize-payload") {
            self.flags = (self.flags | USER_SANITIZE) & !USER_SKIP_SANITIZE;
        } else if is("nopass") {
            self.flags |= USER_NOPASS;
            self.passwords.clear();
        } else if is("resetpass") {
            self.flags &= !USER_NOPASS;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let h = if op[0] == b'>' {
                hash_password(&op[1..])
            } else {
                if !valid_hash(&op[1..]) {
                    return Err(SetErr::BadMsg);
                }
                String::from_utf8_lossy(&op[1..]).into_owned()
            };
            if !self.passwords.contains(&h) {
                self.passwords.push(h);
            }
            self.flags &= !USER_NOPASS;
        } else if op[0] == b'<' || op[0] == b'!' {
            let h = if op[0] == b'<' {
                hash_password(&op[1..])
            } else {
                if !valid_hash(&op[1..]) {
                    return Err(SetErr::BadMsg);
                }
                String::from_utf8_lossy(&op[1..]).into_owned()
            };
            match self.passwords.iter().position(|p| *p == h) {
                Some(i) => {
                    self.passwords.remove(i);
                }
                None => return Err(SetErr::NoDev),
            }
        } else if op[0] == b'(' && op[op.len() - 1] == b')' {
            let mut s = Selector::new(0);
            let inner = &op[1..op.len() - 1];
            let mut buf = Vec::new();
            let mut spans = Vec::new();
            if !ferrocache_protocol::resp::split_args(inner, &mut buf, &mut spans) {
                return Err(SetErr::Inval);
            }
            for r in spans {
                s.apply(&buf[r])?;
            }
            self.selectors.push(s);
        } else if is("clearselectors") {
            self.selectors.truncate(1);
        } else if is("reset") {
            self.flags &= !USER_NOPASS;
            self.passwords.clear();
            let r = self.root();
            r.flags &= !(SEL_ALLKEYS | SEL_ALLCHANNELS);
            r.patterns.clear();
            r.channels.clear();
            r.flags |= pubsub_default();
            self.flags = (self.flags | USER_OFF) & !USER_ON;
            self.flags = (self.flags | USER_SANITIZE) & !USER_SKIP_SANITIZE;
            self.selectors.truncate(1);
            self.root().all_commands(false);
        } else {
            self.root().apply(op)?;
        }
        Ok(())
    }

    /// ACLDescribeUser (the ACL LIST / aclfile form, without "user <name> ").
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (f, n) in USER_FLAG_NAMES {
            if self.flags & f != 0 {
                s.push_str(n);
                s.push(' ');
            }
        }
        for p in &self.passwords {
            s.push('#');
            s.push_str(p);
            s.push(' ');
        }
        for (i, sel) in self.selectors.iter().enumerate() {
            if i == 0 {
                s.push_str(&sel.describe());
            } else {
                s.push_str(&format!(" ({})", sel.describe()));
            }
        }
        s
    }
}

/// Merge selector arguments spread over several arguments (ACLMergeSelectorArguments).
pub(super) fn merge_selector_args(args: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, usize> {
    let mut out = Vec::new();
    let mut open: Option<usize> = None;
    let mut sel: Vec<u8> = Vec::new();
    for (j, op) in args.iter().enumerate() {
        if op.first() == Some(&b'(') && op.last() != Some(&b')') {
            sel = op.clone();
            open = Some(j);
            continue;
        }
        if open.is_some() {
            sel.push(b' ');
            sel.extend_from_slice(op);
            if op.last() == Some(&b')') {
                open = None;
                out.push(std::mem::take(&mut sel));
            }
            continue;
        }
        out.push(op.clone());
    }
    match open {
        Some(j) => Err(j),
        None => Ok(out),
    }
}
