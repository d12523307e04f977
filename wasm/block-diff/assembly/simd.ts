// v128 helpers, inlined by the compiler. Static methods because AssemblyScript's @inline on a
// top-level function is not TypeScript syntax (deno fmt would drop it).

export class V {
  // Rotations by 16 and 8 are whole-byte moves: one byte shuffle (pshufb) instead of
  // shift + shift + or. i32 lanes are little-endian: lane bytes [b0 b1 b2 b3].
  @inline
  static rotr16(x: v128): v128 {
    // deno-fmt-ignore
    return i8x16.shuffle(x, x, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
  }

  @inline
  static rotr8(x: v128): v128 {
    // deno-fmt-ignore
    return i8x16.shuffle(x, x, 1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12);
  }

  @inline
  static rotr12(x: v128): v128 {
    return v128.or(i32x4.shr_u(x, 12), i32x4.shl(x, 20));
  }

  @inline
  static rotr7(x: v128): v128 {
    return v128.or(i32x4.shr_u(x, 7), i32x4.shl(x, 25));
  }

  /** i32 lanes [a0, b0, a1, b1]. */
  @inline
  static unpackLo32(a: v128, b: v128): v128 {
    // deno-fmt-ignore
    return i8x16.shuffle(a, b, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  }

  /** i32 lanes [a2, b2, a3, b3]. */
  @inline
  static unpackHi32(a: v128, b: v128): v128 {
    // deno-fmt-ignore
    return i8x16.shuffle(a, b, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  }

  /** i64 lanes [a0, b0]. */
  @inline
  static unpackLo64(a: v128, b: v128): v128 {
    // deno-fmt-ignore
    return i8x16.shuffle(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  }

  /** i64 lanes [a1, b1]. */
  @inline
  static unpackHi64(a: v128, b: v128): v128 {
    // deno-fmt-ignore
    return i8x16.shuffle(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  }
}
