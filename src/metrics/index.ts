export * from './registry.ts';
export * from './record.ts';
export * from './sources.ts';
export * from './cluster.ts';
export * from './guards.ts';
