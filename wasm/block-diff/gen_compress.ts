// Generates wasm/block-diff/assembly/compress.ts: the BLAKE3 compression function, fully
// unrolled (7 rounds x 8 G), once scalar and once 4-lane SIMD (one chunk per v128 lane).
//
// Why a generator: AssemblyScript cannot return several values from an inlined helper, and a
// round loop with the message permutation done by moving 16 locals costs both V8 and Binaryen
// a lot of shuffling. Unrolled straight-line code with the message schedule resolved at
// generation time is what the reference SIMD implementations do too.
//
// Run after editing: deno run --allow-read --allow-write wasm/block-diff/gen_compress.ts
// (`--check` only compares; `deno task check` runs it so the two never drift apart.)

const PERM = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];

/** schedule[r][i]: which message word feeds slot i in round r. */
function schedule(): number[][] {
  const rounds: number[][] = [Array.from({ length: 16 }, (_, i) => i)];
  for (let r = 1; r < 7; r++) rounds.push(PERM.map((p) => rounds[r - 1][p]));
  return rounds;
}

/** The 8 G applications of a round: [a, b, c, d, message slot x, message slot y]. */
const G_ARGS = [
  [0, 4, 8, 12, 0, 1],
  [1, 5, 9, 13, 2, 3],
  [2, 6, 10, 14, 4, 5],
  [3, 7, 11, 15, 6, 7],
  [0, 5, 10, 15, 8, 9],
  [1, 6, 11, 12, 10, 11],
  [2, 7, 8, 13, 12, 13],
  [3, 4, 9, 14, 14, 15],
];

// add3 adds the message word before b: b is the value computed last, so a + m can start
// while b is still in flight (one op off the critical path; measured ~3% faster).
interface Ops {
  add3(a: string, b: string, m: string): string;
  add(a: string, b: string): string;
  xorRot(x: string, y: string, n: number): string;
}

const scalarOps: Ops = {
  add3: (a, b, m) => `${a} + ${m} + ${b}`,
  add: (a, b) => `${a} + ${b}`,
  xorRot: (x, y, n) => `rotr<u32>(${x} ^ ${y}, ${n})`,
};

const simdOps: Ops = {
  add3: (a, b, m) => `i32x4.add(i32x4.add(${a}, ${m}), ${b})`,
  add: (a, b) => `i32x4.add(${a}, ${b})`,
  xorRot: (x, y, n) => `V.rotr${n}(v128.xor(${x}, ${y}))`,
};

/** Straight-line rounds; the four G of each half-round are interleaved step by step for ILP. */
function rounds(ops: Ops, indent: string): string {
  const lines: string[] = [];
  const sched = schedule();
  for (let r = 0; r < 7; r++) {
    lines.push(`${indent}// round ${r}`);
    for (const half of [G_ARGS.slice(0, 4), G_ARGS.slice(4)]) {
      const steps: ((g: number[]) => string)[] = [
        ([a, b, , , x]) => `v${a} = ${ops.add3(`v${a}`, `v${b}`, `m${sched[r][x]}`)};`,
        ([a, , , d]) => `v${d} = ${ops.xorRot(`v${d}`, `v${a}`, 16)};`,
        ([, , c, d]) => `v${c} = ${ops.add(`v${c}`, `v${d}`)};`,
        ([, b, c]) => `v${b} = ${ops.xorRot(`v${b}`, `v${c}`, 12)};`,
        ([a, b, , , , y]) => `v${a} = ${ops.add3(`v${a}`, `v${b}`, `m${sched[r][y]}`)};`,
        ([a, , , d]) => `v${d} = ${ops.xorRot(`v${d}`, `v${a}`, 8)};`,
        ([, , c, d]) => `v${c} = ${ops.add(`v${c}`, `v${d}`)};`,
        ([, b, c]) => `v${b} = ${ops.xorRot(`v${b}`, `v${c}`, 7)};`,
      ];
      for (const step of steps) for (const g of half) lines.push(indent + step(g));
    }
  }
  return lines.join("\n");
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function scalarCompress(): string {
  return `/**
 * One BLAKE3 compression; writes the 8-word chaining value (= the first 32 bytes of the
 * output, which is all refsync ever needs) to \`out\`. \`out\` may alias \`cv\` or \`msg\`:
 * both are read into locals first.
 */
export function compress(
  cv: usize,
  msg: usize,
  counter: u64,
  blockLen: u32,
  flags: u32,
  out: usize,
): void {
${range(16).map((i) => `  const m${i} = load<u32>(msg, ${i * 4});`).join("\n")}
${range(8).map((i) => `  let v${i} = load<u32>(cv, ${i * 4});`).join("\n")}
  let v8: u32 = IV0;
  let v9: u32 = IV1;
  let v10: u32 = IV2;
  let v11: u32 = IV3;
  let v12 = <u32> counter;
  let v13 = <u32> (counter >> 32);
  let v14 = blockLen;
  let v15 = flags;
${rounds(scalarOps, "  ")}
${range(8).map((i) => `  store<u32>(out, v${i} ^ v${i + 8}, ${i * 4});`).join("\n")}
}`;
}

/** 4x4 transpose of i32 lanes: out[k] lane j = rows[j] lane k (unpack 32, then unpack 64). */
function transpose(indent: string, rows: string[], out: string[], tmp: string): string {
  const [a, b, c, d] = rows;
  return [
    `const ${tmp}0 = V.unpackLo32(${a}, ${b});`,
    `const ${tmp}1 = V.unpackHi32(${a}, ${b});`,
    `const ${tmp}2 = V.unpackLo32(${c}, ${d});`,
    `const ${tmp}3 = V.unpackHi32(${c}, ${d});`,
    `const ${out[0]} = V.unpackLo64(${tmp}0, ${tmp}2);`,
    `const ${out[1]} = V.unpackHi64(${tmp}0, ${tmp}2);`,
    `const ${out[2]} = V.unpackLo64(${tmp}1, ${tmp}3);`,
    `const ${out[3]} = V.unpackHi64(${tmp}1, ${tmp}3);`,
  ].map((l) => indent + l).join("\n");
}

function simdChunks(): string {
  const loads = range(4).flatMap((lane) =>
    range(4).map((q) => `    const r${lane}_${q} = v128.load(p, ${lane * 1024 + q * 16});`)
  );
  // r{lane}_{q} holds words 4q..4q+3 of chunk \`lane\`; transposing the four lanes' q-th
  // vectors gives message words 4q..4q+3, each with one chunk per lane.
  const transposes = range(4).map((q) =>
    transpose(
      "    ",
      [`r0_${q}`, `r1_${q}`, `r2_${q}`, `r3_${q}`],
      range(4).map((k) => `m${4 * q + k}`),
      `t${q}_`,
    )
  );
  return `/**
 * Chaining values of the 4 consecutive full 1 KiB chunks at \`input\` (one chunk per v128
 * lane) with chunk counters \`counter\`..\`counter + 3\` (\`counter\` a multiple of 4, so
 * the low word never carries). Writes the 8 CV words word-major (vector j, one chunk per
 * lane, at \`out + 16 j\`).
 */
export function chunks4(input: usize, counter: u64, out: usize): void {
  const ctrLo = i32x4.add(i32x4.splat(<i32> counter), i32x4(0, 1, 2, 3));
  const ctrHi = i32x4.splat(<i32> (counter >> 32));
  const blockLen = i32x4.splat(64);
${range(8).map((i) => `  let h${i} = i32x4.splat(IV${i});`).join("\n")}
  for (let block: u32 = 0; block < 16; block++) {
    const p = input + (<usize> block << 6);
${loads.join("\n")}
${transposes.join("\n")}
    const flags = i32x4.splat(
      select<u32>(CHUNK_START, 0, block == 0) | select<u32>(CHUNK_END, 0, block == 15),
    );
${range(8).map((i) => `    let v${i} = h${i};`).join("\n")}
    let v8 = i32x4.splat(IV0);
    let v9 = i32x4.splat(IV1);
    let v10 = i32x4.splat(IV2);
    let v11 = i32x4.splat(IV3);
    let v12 = ctrLo;
    let v13 = ctrHi;
    let v14 = blockLen;
    let v15 = flags;
${rounds(simdOps, "    ")}
${range(8).map((i) => `    h${i} = v128.xor(v${i}, v${i + 8});`).join("\n")}
  }
  // Word-major: vector j (lanes = the 4 chunks) at out + 16 j. parents4 transposes these
  // across 4 blocks into parent messages.
${range(8).map((i) => `  v128.store(out, h${i}, ${i * 16});`).join("\n")}
}`;
}

/**
 * 4-lane compression with everything word-major in memory: message vector j at msg + 16 j,
 * input CV vector j at cv + 16 j, output CV vector j at out + 16 j (out may alias either).
 * Used for parent nodes of 4 blocks at once, lane = block.
 */
function simdCompress4(): string {
  return `/**
 * Four compressions at once, one per lane, everything word-major in memory: message word j
 * of all lanes at \`msg + 16 j\`, chaining value word j at \`cv + 16 j\`, output word j to
 * \`out + 16 j\` (\`out\` may alias \`msg\` or \`cv\`). Counter 0, as for parent nodes.
 */
export function compress4(msg: usize, cv: usize, blockLen: u32, flags: u32, out: usize): void {
${range(16).map((i) => `  const m${i} = v128.load(msg, ${i * 16});`).join("\n")}
${range(8).map((i) => `  let v${i} = v128.load(cv, ${i * 16});`).join("\n")}
  let v8 = i32x4.splat(IV0);
  let v9 = i32x4.splat(IV1);
  let v10 = i32x4.splat(IV2);
  let v11 = i32x4.splat(IV3);
  let v12 = i32x4.splat(0);
  let v13 = i32x4.splat(0);
  let v14 = i32x4.splat(blockLen);
  let v15 = i32x4.splat(flags);
${rounds(simdOps, "  ")}
${range(8).map((i) => `  v128.store(out, v128.xor(v${i}, v${i + 8}), ${i * 16});`).join("\n")}
}`;
}

const header = `// GENERATED by wasm/block-diff/gen_compress.ts: edit that file, not this one.
// deno-fmt-ignore-file
import { CHUNK_END, CHUNK_START, IV0, IV1, IV2, IV3, IV4, IV5, IV6, IV7 } from "./constants";
import { V } from "./simd";
`;

const target = new URL("./assembly/compress.ts", import.meta.url);
const generated = `${header}\n${scalarCompress()}\n\n${simdChunks()}\n\n${simdCompress4()}\n`;
if (Deno.args.includes("--check")) {
  // `deno task check`: the committed file must be exactly what this generator writes.
  const committed = await Deno.readTextFile(target);
  if (committed !== generated) {
    console.error(
      `${target.pathname} differs from what gen_compress.ts generates; ` +
        "run: deno run --allow-read --allow-write wasm/block-diff/gen_compress.ts",
    );
    Deno.exit(1);
  }
} else {
  await Deno.writeTextFile(target, generated);
  console.log(`wrote ${target.pathname}`);
}
