;; Every store instruction and bulk memory op, one export each: the store-barrier tracker must report the pages
;; each one writes (tests/Runtime/StoreBarrierTests.cs).
(module
  (memory (export "memory") 4 64)
  (func (export "i32_store8") (param i32 i64) (i32.store8 (local.get 0) (i32.wrap_i64 (local.get 1))))
  (func (export "i32_store16") (param i32 i64) (i32.store16 (local.get 0) (i32.wrap_i64 (local.get 1))))
  (func (export "i32_store") (param i32 i64) (i32.store (local.get 0) (i32.wrap_i64 (local.get 1))))
  (func (export "i64_store8") (param i32 i64) (i64.store8 (local.get 0) (local.get 1)))
  (func (export "i64_store16") (param i32 i64) (i64.store16 (local.get 0) (local.get 1)))
  (func (export "i64_store32") (param i32 i64) (i64.store32 (local.get 0) (local.get 1)))
  (func (export "i64_store") (param i32 i64) (i64.store (local.get 0) (local.get 1)))
  (func (export "f32_store") (param i32 i64) (f32.store (local.get 0) (f32.reinterpret_i32 (i32.wrap_i64 (local.get 1)))))
  (func (export "f64_store") (param i32 i64) (f64.store (local.get 0) (f64.reinterpret_i64 (local.get 1))))
  ;; offset immediates: the barrier must mark the effective address, not the base
  (func (export "i64_store_offset") (param i32 i64) (i64.store offset=4093 (local.get 0) (local.get 1)))
  (func (export "fill") (param i32 i32 i32) (memory.fill (local.get 0) (local.get 1) (local.get 2)))
  (func (export "copy") (param i32 i32 i32) (memory.copy (local.get 0) (local.get 1) (local.get 2)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
)
