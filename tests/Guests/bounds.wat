;; Bounds, growth and interruption: every access width at every edge, and guests that never return.
(module
  (import "env" "reenter" (func $reenter (result i32)))
  (import "env" "native_fault" (func $native_fault))
  (memory (export "memory") 1 4)
  (func (export "load8") (param i32) (result i32) (i32.load8_u (local.get 0)))
  (func (export "load16") (param i32) (result i32) (i32.load16_u (local.get 0)))
  (func (export "load32") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "load64") (param i32) (result i64) (i64.load (local.get 0)))
  (func (export "load32_max_offset") (param i32) (result i32) (i32.load offset=0xFFFFFFFF (local.get 0)))
  (func (export "load64_offset_64k") (param i32) (result i64) (i64.load offset=65536 (local.get 0)))
  (func (export "store8") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
  (func (export "store32") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func (export "store64") (param i32 i64) (i64.store (local.get 0) (local.get 1)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "size") (result i32) (memory.size))
  ;; Never returns, and makes no call: only a loop back-edge poll can stop it.
  (func (export "spin") (loop $l (br $l)))
  ;; Never returns; a function entry every iteration.
  (func $nop)
  (func (export "spin_calls") (loop $l (call $nop) (br $l)))
  ;; Counts down from n with a conditional back-edge (a loop that ends).
  (func (export "count") (param i32) (result i32)
    (loop $l (local.set 0 (i32.sub (local.get 0) (i32.const 1))) (br_if $l (i32.gt_s (local.get 0) (i32.const 0))))
    (local.get 0))
  ;; Calls the host, which calls back into "spin".
  (func (export "outer") (result i32) (call $reenter))
  (func (export "call_native_fault") (call $native_fault))
)
