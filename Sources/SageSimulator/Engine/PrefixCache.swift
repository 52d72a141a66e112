/// An approximate model of vLLM's automatic prefix caching: prompts are cut into blocks of
/// `blockSize` tokens, each block is identified by a hash of itself and everything before it,
/// and a request reuses the longest run of leading blocks already seen. The cache holds at
/// most `capacityBlocks` blocks and evicts the least recently used.
struct PrefixCache {
    let blockSize: Int
    let capacityBlocks: Int
    private var lastUse: [UInt64: UInt64] = [:]
    private var clock: UInt64 = 0

    init(blockSize: Int = 16, capacityBlocks: Int) {
        self.blockSize = max(1, blockSize)
        self.capacityBlocks = max(1, capacityBlocks)
    }

    /// Looks up `tokens` and records its blocks. Returns the number of prompt tokens served from
    /// the cache: whole blocks, and like vLLM only blocks before the last token (which is always computed).
    mutating func lookUpAndInsert(_ tokens: [Int]) -> Int {
        clock &+= 1
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var matched = 0
        var stillMatching = true
        let fullBlocks = tokens.count / blockSize
        for block in 0..<fullBlocks {
            for token in tokens[(block * blockSize)..<((block + 1) * blockSize)] {
                hash = (hash ^ UInt64(truncatingIfNeeded: token)) &* 0x0000_0100_0000_01b3
            }
            if stillMatching, lastUse[hash] != nil {
                matched += 1
            } else {
                stillMatching = false
            }
            lastUse[hash] = clock
        }
        if lastUse.count > capacityBlocks { evict() }
        return min(matched, max(0, tokens.count - 1) / blockSize) * blockSize
    }

    /// Drops the oldest quarter of the blocks (amortised: runs only when over capacity).
    private mutating func evict() {
        let keep = capacityBlocks * 3 / 4
        let sorted = lastUse.sorted { $0.value > $1.value }
        lastUse = Dictionary(uniqueKeysWithValues: sorted.prefix(keep).map { ($0.key, $0.value) })
    }
}
