/// The body of `GET /v1/models`.
public struct ModelList: Codable, Sendable, Hashable {
    public var object: String
    public var data: [ModelInfo]

    public init(object: String = "list", data: [ModelInfo]) {
        self.object = object
        self.data = data
    }

    enum CodingKeys: String, CodingKey { case object, data }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        object = try c.decodeIfPresent(String.self, forKey: .object) ?? "list"
        data = try c.decodeIfPresent([ModelInfo].self, forKey: .data) ?? []
    }
}

/// One served model. `ownedBy` identifies many engines (`vllm`, `sglang`, `lmdeploy`, `llamacpp`).
public struct ModelInfo: Codable, Sendable, Hashable {
    public var id: String
    public var object: String
    public var created: Int?
    public var ownedBy: String?
    public var root: String?
    public var parent: String?
    /// vLLM: the context length.
    public var maxModelLen: Int?

    public init(
        id: String, object: String = "model", created: Int? = nil, ownedBy: String? = nil, root: String? = nil,
        parent: String? = nil, maxModelLen: Int? = nil
    ) {
        self.id = id
        self.object = object
        self.created = created
        self.ownedBy = ownedBy
        self.root = root
        self.parent = parent
        self.maxModelLen = maxModelLen
    }

    enum CodingKeys: String, CodingKey {
        case id, object, created, root, parent
        case ownedBy = "owned_by"
        case maxModelLen = "max_model_len"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        object = try c.decodeIfPresent(String.self, forKey: .object) ?? "model"
        created = try c.decodeIfPresent(Int.self, forKey: .created)
        ownedBy = try c.decodeIfPresent(String.self, forKey: .ownedBy)
        root = try c.decodeIfPresent(String.self, forKey: .root)
        parent = try c.decodeIfPresent(String.self, forKey: .parent)
        maxModelLen = try c.decodeIfPresent(Int.self, forKey: .maxModelLen)
    }
}
