;; The pool's test guest: 256 i64 slots, a "stack pointer" global that writes move (so globals must travel
;; with commits), a scratch region reads scribble on, a counter with an append-only log, traps and growth.
(module
  (import "env" "fail" (func $fail))
  (memory (export "memory") 2 64)
  (global $sp (mut i32) (i32.const 65536))
  (func $slot (param $k i32) (result i32)
    (i32.add (i32.const 1024) (i32.shl (i32.and (local.get $k) (i32.const 255)) (i32.const 3))))
  (func $put (export "put") (param $k i32) (param $v i64)
    (i64.store (call $slot (local.get $k)) (local.get $v))
    (global.set $sp (i32.sub (global.get $sp) (i32.const 16))))
  (func (export "get") (param $k i32) (result i64) (i64.load (call $slot (local.get $k))))
  (func (export "put_then_fail") (param $k i32) (param $v i64) (call $put (local.get $k) (local.get $v)) (call $fail))
  (func (export "put_then_trap") (param $k i32) (param $v i64) (call $put (local.get $k) (local.get $v)) unreachable)
  (func (export "sp") (result i32) (global.get $sp))
  ;; Writes seed-derived bytes over [8192, 8192 + 16384) and moves the stack pointer: a read's side effects.
  (func (export "scribble") (param $seed i32) (local $i i32)
    (loop $fill
      (i32.store (i32.add (i32.const 8192) (local.get $i)) (i32.add (local.get $seed) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br_if $fill (i32.lt_u (local.get $i) (i32.const 16384))))
    (global.set $sp (i32.const 12345)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "size") (result i32) (memory.size))
  ;; counter at 0; log[n % 8192] = n at 32768 (i32 entries).
  (func (export "append") (result i32) (local $n i32)
    (local.set $n (i32.add (i32.load (i32.const 0)) (i32.const 1)))
    (i32.store (i32.const 0) (local.get $n))
    (i32.store (i32.add (i32.const 32768) (i32.shl (i32.and (local.get $n) (i32.const 8191)) (i32.const 2))) (local.get $n))
    (local.get $n))
)
