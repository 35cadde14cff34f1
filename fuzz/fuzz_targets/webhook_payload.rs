//! Fuzzes the webhook payload parser, the label/timestamp validators, the
//! rule matcher parser and the target grammars (see
//! `hostmedic::receiver::fuzz_check`): none may panic, and whatever the
//! parser accepts must satisfy the validators it promises.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hostmedic::receiver::fuzz_check(data);
});
