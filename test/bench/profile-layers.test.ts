import { describe, expect, it } from 'vitest';
import { GC, layerTable, layerTimes, PROGRAM, SOCKET_WRITES, STREAMS, type CpuProfile, type CpuProfileNode } from '../../bench/profile-layers.ts';

const node = (id: number, functionName: string, url: string, children: number[] = []): CpuProfileNode => ({
  id,
  callFrame: { functionName, url },
  children,
});

// A tiny profile shaped as the inspector writes one:
//   (root)
//   ├ (program)   (idle)   (garbage collector)
//   ├ onData  dist/esl/connection.js
//   │  └ transition  node_modules/xstate  └ action  src/flow/machine.ts  └ query  node_modules/pg  └ _writeGeneric  node:net  └ writev (native)
//   │                                                                                          └ (leaf: query itself)
//   ├ onStreamRead  node:internal/stream_base_commons
//   │  ├ push  node:internal/streams/readable            (no layer above: streams)
//   │  └ parse  src/esl/parser.ts  └ parse (native JSON.parse)   (the ESL layer's)
//   ├ routeHandler  node_modules/fastify  └ write  node_modules/pino
//   └ post  node:inspector  └ dispatch (native)   (the profiler stopping: left out)
const ROOT = '';
const profile: CpuProfile = {
  nodes: [
    node(1, '(root)', ROOT, [2, 3, 4, 5, 11, 15, 17]),
    node(2, '(program)', ROOT),
    node(3, '(idle)', ROOT),
    node(4, '(garbage collector)', ROOT),
    node(5, 'onData', 'file:///app/dist/esl/connection.js', [6]),
    node(6, 'transition', 'file:///app/node_modules/xstate/dist/xstate.esm.js', [7]),
    node(7, 'reserve', 'file:///app/src/flow/machine.ts', [8]),
    node(8, 'query', 'file:///app/node_modules/pg/lib/client.js', [9]),
    node(9, '_writeGeneric', 'node:net', [10]),
    node(10, 'writev', ROOT),
    node(11, 'onStreamRead', 'node:internal/stream_base_commons', [12, 13]),
    node(12, 'push', 'node:internal/streams/readable'),
    node(13, 'parse', 'file:///app/src/esl/parser.ts', [14]),
    node(14, 'parse', ROOT),
    node(15, 'routeHandler', 'file:///app/node_modules/fastify/lib/route.js', [16]),
    node(16, 'write', 'file:///app/node_modules/pino/lib/proto.js'),
    node(17, 'post', 'node:inspector', [18]),
    node(18, 'dispatch', ROOT),
  ],
  //         program idle  gc    writev query push  JSONparse pino  xstate flow
  samples: [2, 3, 4, 10, 8, 12, 14, 16, 6, 7, 3, 4, 18],
  timeDeltas: [1000, 50_000, 2000, 3000, 4000, 500, 700, 1500, 600, 300, 50_000, 2000, 9000],
};

describe('profile-layers', () => {
  it('gives each sample to GC, native socket writes, or the innermost layer on its stack, idle and the profiler left out', () => {
    const { byLayer, idleUs, busyUs, profilerUs } = layerTimes(profile);
    expect(idleUs).toBe(100_000);
    expect(profilerUs).toBe(9000);
    expect(busyUs).toBe(1000 + 4000 + 3000 + 4000 + 500 + 700 + 1500 + 600 + 300);
    expect(Object.fromEntries(byLayer)).toEqual({
      [PROGRAM]: 1000,
      [GC]: 4000,
      [SOCKET_WRITES]: 3000, // writev under pg under the flow: the write, whoever asked for it
      'PostgreSQL client (pg)': 4000, // pg's own frame, not the flow or the ESL layer that called it
      [STREAMS]: 500, // Readable.push with only node's stream frames above it
      'ESL (src/esl)': 700, // a native JSON.parse called by the ESL parser
      'logging (pino)': 1500, // pino called from a fastify route: the innermost layer
      XState: 600,
      'call flow (src/flow)': 300,
    });
  });

  it('prints ms per call, largest first, with the busy and idle totals', () => {
    const lines = layerTable(profile, 2);
    expect(lines[0]).toMatch(/^layer\s+ms\/call\s+share$/);
    expect(lines[1]).toMatch(/^GC\s+2\.00\s+25\.6 %$/); // 4 ms over 2 calls; 4 of 15.6 busy ms (a tie with pg: first seen first)
    expect(lines[2]).toMatch(/^PostgreSQL client \(pg\)\s+2\.00/);
    expect(lines.at(-3)).toMatch(/^busy \(main thread, sampled\)\s+7\.80$/);
    expect(lines.at(-2)).toMatch(/^idle \(left out\)\s+50\.00$/);
    expect(lines.at(-1)).toMatch(/^the profiler itself \(left out\)\s+4\.50$/);
  });
});
