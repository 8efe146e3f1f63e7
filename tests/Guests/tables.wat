;; Tables and segments a guest can change: what a pool must restore per read and commit with a write.
(module
  (type $r (func (result i32)))
  (memory (export "memory") 1)
  (table $t 2 64 funcref)
  (table $x 1 8 externref)
  (func $one (result i32) (i32.const 1))
  (func $two (result i32) (i32.add (i32.const 2) (i32.load (i32.const 0)))) ;; reads its own instance's memory
  (func $three (result i32) (i32.const 3))
  (elem (i32.const 0) func $one $one)
  (elem $p func $three $three)
  (elem declare func $two)
  (data $d "segment")
  ;; table[i] := $two (2 + memory[0])
  (func (export "set_two") (param i32) (table.set $t (local.get 0) (ref.func $two)))
  ;; grows by n (entries null); returns the old size or -1
  (func (export "grow") (param i32) (result i32) (table.grow $t (ref.null func) (local.get 0)))
  (func (export "size") (result i32) (table.size $t))
  (func (export "call") (param i32) (result i32) (call_indirect $t (type $r) (local.get 0)))
  ;; table[i..i+2] := $three $three, from the passive segment
  (func (export "tinit") (param i32) (table.init $t $p (local.get 0) (i32.const 0) (i32.const 2)))
  (func (export "edrop") (elem.drop $p))
  ;; memory[a..a+7] := "segment"
  (func (export "minit") (param i32) (memory.init $d (local.get 0) (i32.const 0) (i32.const 7)))
  (func (export "ddrop") (data.drop $d))
  (func (export "xset") (param externref) (table.set $x (i32.const 0) (local.get 0)))
  (func (export "xget") (result externref) (table.get $x (i32.const 0)))
  (func (export "poke") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func (export "peek") (param i32) (result i32) (i32.load (local.get 0)))
)
