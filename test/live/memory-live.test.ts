import { MemoryLiveBalance } from '../../src/live/memory-live.ts';
import { liveBalanceContract } from './contract.ts';

liveBalanceContract('MemoryLiveBalance', {
  async create({ idleTtlMs }) {
    return new MemoryLiveBalance({ idleTtlMs });
  },
});
