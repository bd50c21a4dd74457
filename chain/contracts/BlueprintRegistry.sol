// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title BlueprintRegistry
/// @notice Developers publish blueprints: where to get the workload, its hard requirements and its hourly price per
/// tier. A blueprint is immutable once registered. URLs and image names are validated by operators, not here: the
/// registry stays forward compatible with source kinds it does not know.
contract BlueprintRegistry {
    /// @dev kind 0 native: uri = http(s) URL, digest = sha256 of the file; 1 container: uri = image name without tag,
    /// digest = sha256 of the manifest; 2 testing: like native.
    struct Source {
        uint8 kind;
        string uri;
        bytes32 digest;
    }

    struct Requirements {
        uint32 vcpuMilli;
        uint32 memoryMiB;
        uint32 storageGiB;
        uint16 gpuCount;
        string gpuModel;
        uint16[] ports;
    }

    struct Blueprint {
        address developer;
        string name;
        Source[] sources;
        Requirements requirements;
        /// @dev one price per tier index (0 basic, 1 standard, 2 premium, ...), token base units per hour
        uint256[] pricePerHour;
    }

    event BlueprintRegistered(uint64 indexed blueprintId, address indexed developer, string name);

    error EmptyName();
    error NoSources();
    error NoPrices();
    error ZeroPrice(uint256 tier);
    error PriceTooHigh(uint256 tier, uint256 price, uint256 max);
    error TooManyTiers(uint256 tiers, uint256 max);
    error UnknownBlueprint(uint64 blueprintId);

    /// @notice Most tiers (prices) a blueprint may have; tier indexes are 0 .. MAX_TIERS - 1.
    uint256 public constant MAX_TIERS = 16;
    /// @notice Highest price, token base units per hour: the escrow's arithmetic stays far from overflow below it.
    uint256 public constant MAX_PRICE = type(uint128).max;

    /// @notice Id of the last registered blueprint; ids start at 1.
    uint64 public blueprintCount;
    mapping(uint64 => Blueprint) private _blueprints;

    /// @notice Register a blueprint; the caller is its developer.
    function registerBlueprint(
        string calldata name,
        Source[] calldata sources,
        Requirements calldata req,
        uint256[] calldata pricePerHour
    ) external returns (uint64 id) {
        if (bytes(name).length == 0) revert EmptyName();
        if (sources.length == 0) revert NoSources();
        if (pricePerHour.length == 0) revert NoPrices();
        if (pricePerHour.length > MAX_TIERS) revert TooManyTiers(pricePerHour.length, MAX_TIERS);
        for (uint256 i = 0; i < pricePerHour.length; i++) {
            if (pricePerHour[i] == 0) revert ZeroPrice(i);
            if (pricePerHour[i] > MAX_PRICE) revert PriceTooHigh(i, pricePerHour[i], MAX_PRICE);
        }
        id = ++blueprintCount;
        Blueprint storage b = _blueprints[id];
        b.developer = msg.sender;
        b.name = name;
        for (uint256 i = 0; i < sources.length; i++) {
            Source storage s = b.sources.push();
            s.kind = sources[i].kind;
            s.uri = sources[i].uri;
            s.digest = sources[i].digest;
        }
        Requirements storage r = b.requirements;
        r.vcpuMilli = req.vcpuMilli;
        r.memoryMiB = req.memoryMiB;
        r.storageGiB = req.storageGiB;
        r.gpuCount = req.gpuCount;
        r.gpuModel = req.gpuModel;
        for (uint256 i = 0; i < req.ports.length; i++) {
            r.ports.push(req.ports[i]);
        }
        for (uint256 i = 0; i < pricePerHour.length; i++) {
            b.pricePerHour.push(pricePerHour[i]);
        }
        emit BlueprintRegistered(id, msg.sender, name);
    }

    /// @notice Whether a blueprint with this id was registered.
    function exists(uint64 id) public view returns (bool) {
        return _blueprints[id].developer != address(0);
    }

    /// @notice Everything about a blueprint; reverts with UnknownBlueprint for an id never registered.
    function getBlueprint(uint64 id) external view returns (Blueprint memory) {
        if (!exists(id)) revert UnknownBlueprint(id);
        return _blueprints[id];
    }

    /// @notice The hourly prices per tier of a blueprint; reverts with UnknownBlueprint.
    function prices(uint64 id) external view returns (uint256[] memory) {
        if (!exists(id)) revert UnknownBlueprint(id);
        return _blueprints[id].pricePerHour;
    }
}
