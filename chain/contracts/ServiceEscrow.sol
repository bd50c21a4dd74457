// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

interface IERC20Minimal {
    function transfer(address to, uint256 amount) external returns (bool);
    function transferFrom(address from, address to, uint256 amount) external returns (bool);
}

interface IBlueprintRegistry {
    function exists(uint64 id) external view returns (bool);
    function prices(uint64 id) external view returns (uint256[] memory);
}

/// @title ServiceEscrow
/// @notice Customers pay into escrow for an instance of a blueprint served by one operator. The operator earns the
/// tier's hourly rate pro rata by time while the service is active (rounded down: in the customer's favour) and may
/// withdraw what it has earned; whatever was not served goes back to the customer on termination or refund.
///
/// Bounds (checked where values enter; together they make every later computation overflow-free, and the accrual is
/// saturating besides): a TTL of 1 s .. MAX_TTL (100 years); deposits, top-ups and the resulting balance of
/// 1 .. MAX_AMOUNT (2^128 - 1 base units); a rate of 1 .. MAX_RATE (2^128 - 1 base units per hour), also when the
/// registry is not this project's. With them, `terminate` (customer) and `refund` (operator) never revert for a
/// service that is still open, whatever the amounts, rates, times and tiers involved.
contract ServiceEscrow {
    enum State {
        None,
        Requested,
        Active,
        Terminated,
        Closed
    }

    struct Service {
        address customer;
        address operator;
        uint64 blueprintId;
        uint8 tier;
        /// @dev token base units per hour
        uint256 ratePerHour;
        /// @dev unserved money held for the customer
        uint256 balance;
        /// @dev served money not yet withdrawn by the operator
        uint256 earned;
        uint64 settledAt;
        uint64 endsAt;
        uint64 ttl;
        State state;
    }

    /// @dev Every event that changes the payment state carries the state after the change (balance, rate,
    /// settledAt, endsAt), so that an observer can compute paid-until exactly without reading the contract.
    event ServiceInitiated(
        uint64 indexed serviceId,
        uint64 indexed blueprintId,
        address indexed customer,
        address operator,
        uint8 tier,
        bytes preferences,
        uint64 ttlSeconds,
        uint256 deposit,
        uint256 ratePerHour
    );
    /// @dev settledAt = activatedAt; the balance and the rate are unchanged.
    event ServiceActivated(uint64 indexed serviceId, uint64 activatedAt, uint64 endsAt);
    event PaymentReceived(uint64 indexed serviceId, address indexed payer, uint256 amount, uint256 balance, uint64 paidUntil, uint64 settledAt);
    event TierChanged(uint64 indexed serviceId, uint8 tier, uint256 ratePerHour, uint256 balance, uint64 settledAt);
    event ServiceTerminated(uint64 indexed serviceId, address indexed by);
    event Withdrawn(uint64 indexed serviceId, address indexed operator, uint256 amount, uint256 balance, uint64 settledAt);
    event Refunded(uint64 indexed serviceId, address indexed customer, uint256 amount, bytes32 reason);

    error UnknownService(uint64 serviceId);
    error UnknownBlueprint(uint64 blueprintId);
    error UnknownTier(uint8 tier, uint256 tiers);
    error NotCustomer(uint64 serviceId, address caller);
    error NotOperator(uint64 serviceId, address caller);
    error InvalidState(uint64 serviceId, State state);
    error AlreadyEnded(uint64 serviceId, State state);
    error ZeroAmount();
    error ZeroTtl();
    error ZeroAddress();
    error TtlTooLong(uint64 ttlSeconds, uint64 max);
    error AmountTooLarge(uint256 amount, uint256 max);
    error RateOutOfRange(uint8 tier, uint256 ratePerHour);
    error TransferFailed(address token, address to, uint256 amount);

    bytes32 private constant CUSTOMER_TERMINATED = bytes32("CUSTOMER_TERMINATED");

    /// @notice Longest TTL a request may ask for: 100 years of 365 days.
    uint64 public constant MAX_TTL = 100 * 365 days;
    /// @notice Largest deposit, top-up and balance, in token base units.
    uint256 public constant MAX_AMOUNT = type(uint128).max;
    /// @notice Largest rate, token base units per hour (the registry applies the same bound to prices).
    uint256 public constant MAX_RATE = type(uint128).max;

    IERC20Minimal public immutable token;
    IBlueprintRegistry public immutable registry;

    /// @notice Id of the last requested service; ids start at 1.
    uint64 public serviceCount;
    mapping(uint64 => Service) private _services;

    constructor(address token_, address registry_) {
        if (token_ == address(0) || registry_ == address(0)) revert ZeroAddress();
        token = IERC20Minimal(token_);
        registry = IBlueprintRegistry(registry_);
    }

    // ---------------------------------------------------------------- customer

    /// @notice Request an instance of `blueprintId` from `operator`, pulling `deposit` into escrow (approve first).
    function requestService(
        uint64 blueprintId,
        address operator,
        uint8 tier,
        bytes calldata preferences,
        uint64 ttlSeconds,
        uint256 deposit
    ) external returns (uint64 serviceId) {
        if (operator == address(0)) revert ZeroAddress();
        if (deposit == 0) revert ZeroAmount();
        if (ttlSeconds == 0) revert ZeroTtl();
        if (ttlSeconds > MAX_TTL) revert TtlTooLong(ttlSeconds, MAX_TTL);
        if (deposit > MAX_AMOUNT) revert AmountTooLarge(deposit, MAX_AMOUNT);
        uint256 rate = _price(blueprintId, tier);
        serviceId = ++serviceCount;
        Service storage s = _services[serviceId];
        s.customer = msg.sender;
        s.operator = operator;
        s.blueprintId = blueprintId;
        s.tier = tier;
        s.ratePerHour = rate;
        s.balance = deposit;
        s.ttl = ttlSeconds;
        s.state = State.Requested;
        emit ServiceInitiated(serviceId, blueprintId, msg.sender, operator, tier, preferences, ttlSeconds, deposit, rate);
        _pull(msg.sender, deposit);
    }

    /// @notice Add money to a requested or active service; anyone may pay. After the balance ran out, the clock
    /// restarts now: nothing is charged for the unpaid gap.
    function topUp(uint64 serviceId, uint256 amount) external {
        Service storage s = _open(serviceId);
        if (amount == 0) revert ZeroAmount();
        _settle(s);
        // both at most 2^128 - 1: the sum cannot overflow
        if (amount > MAX_AMOUNT || s.balance + amount > MAX_AMOUNT) revert AmountTooLarge(amount, MAX_AMOUNT - s.balance);
        s.balance += amount;
        emit PaymentReceived(serviceId, msg.sender, amount, s.balance, _paidUntil(s), s.settledAt);
        _pull(msg.sender, amount);
    }

    /// @notice Move to another tier; what was served so far is charged at the old rate.
    function changeTier(uint64 serviceId, uint8 tier) external {
        Service storage s = _open(serviceId);
        if (msg.sender != s.customer) revert NotCustomer(serviceId, msg.sender);
        uint256 rate = _price(s.blueprintId, tier);
        _settle(s);
        s.tier = tier;
        s.ratePerHour = rate;
        emit TierChanged(serviceId, tier, rate, s.balance, s.settledAt);
    }

    /// @notice End the service; the unserved balance goes back to the customer at once.
    function terminate(uint64 serviceId) external {
        Service storage s = _open(serviceId);
        if (msg.sender != s.customer) revert NotCustomer(serviceId, msg.sender);
        _settle(s);
        uint256 amount = s.balance;
        s.balance = 0;
        s.state = State.Terminated;
        emit Refunded(serviceId, s.customer, amount, CUSTOMER_TERMINATED);
        emit ServiceTerminated(serviceId, msg.sender);
        _push(s.customer, amount);
    }

    // ---------------------------------------------------------------- operator

    /// @notice Start serving: the TTL and the metering start now.
    function activate(uint64 serviceId) external {
        Service storage s = _get(serviceId);
        if (msg.sender != s.operator) revert NotOperator(serviceId, msg.sender);
        if (s.state != State.Requested) revert InvalidState(serviceId, s.state);
        uint64 now_ = uint64(block.timestamp);
        s.state = State.Active;
        s.settledAt = now_;
        // the TTL is bounded at request; saturate anyway, so that no stored value can make activation revert
        uint256 ends = uint256(now_) + s.ttl;
        s.endsAt = ends > type(uint64).max ? type(uint64).max : uint64(ends);
        emit ServiceActivated(serviceId, now_, s.endsAt);
    }

    /// @notice Pay out what the operator has earned so far (in any state). No transfer, no event and no change at
    /// all when that is zero (every change of the payment state is announced by an event).
    function withdraw(uint64 serviceId) external {
        Service storage s = _get(serviceId);
        if (msg.sender != s.operator) revert NotOperator(serviceId, msg.sender);
        (uint256 accrued, ) = _accrual(s);
        if (s.earned == 0 && accrued == 0) return;
        _settle(s);
        uint256 amount = s.earned;
        s.earned = 0;
        emit Withdrawn(serviceId, s.operator, amount, s.balance, s.settledAt);
        _push(s.operator, amount);
    }

    /// @notice Close the service: the operator takes what it earned, the customer gets the rest back with `reason`.
    /// Reverts with AlreadyEnded on a terminated or closed service.
    function refund(uint64 serviceId, bytes32 reason) external {
        Service storage s = _open(serviceId);
        if (msg.sender != s.operator) revert NotOperator(serviceId, msg.sender);
        _settle(s);
        uint256 earned = s.earned;
        uint256 rest = s.balance;
        s.earned = 0;
        s.balance = 0;
        s.state = State.Closed;
        if (earned != 0) emit Withdrawn(serviceId, s.operator, earned, 0, s.settledAt);
        // always emitted, even for 0: it is how observers learn that the service closed
        emit Refunded(serviceId, s.customer, rest, reason);
        _push(s.operator, earned);
        _push(s.customer, rest);
    }

    // ---------------------------------------------------------------- views

    /// @notice The stored service (state None for an unknown id). Amounts as of the last settlement.
    function getService(uint64 serviceId) external view returns (Service memory) {
        return _services[serviceId];
    }

    /// @notice Many stored services in one call (state None for an unknown id, also for ids above 2^64 - 1). Keep a
    /// call to a few hundred ids: each costs about 15k gas of the node's eth_call gas cap.
    function getServices(uint256[] calldata ids) external view returns (Service[] memory out) {
        out = new Service[](ids.length);
        for (uint256 i = 0; i < ids.length; i++) {
            if (ids[i] <= type(uint64).max) out[i] = _services[uint64(ids[i])];
        }
    }

    /// @notice Unix time up to which the balance pays at the current rate; 0 when the service is not active.
    function paidUntil(uint64 serviceId) external view returns (uint64) {
        return _paidUntil(_services[serviceId]);
    }

    /// @notice What a settlement now would move from the balance to the operator.
    function accruedNow(uint64 serviceId) external view returns (uint256) {
        Service storage s = _services[serviceId];
        (uint256 accrued, ) = _accrual(s);
        return accrued;
    }

    // ---------------------------------------------------------------- internals

    function _get(uint64 serviceId) private view returns (Service storage s) {
        s = _services[serviceId];
        if (s.state == State.None) revert UnknownService(serviceId);
    }

    function _open(uint64 serviceId) private view returns (Service storage s) {
        s = _get(serviceId);
        if (s.state == State.Terminated || s.state == State.Closed) revert AlreadyEnded(serviceId, s.state);
    }

    function _price(uint64 blueprintId, uint8 tier) private view returns (uint256) {
        if (!registry.exists(blueprintId)) revert UnknownBlueprint(blueprintId);
        uint256[] memory p = registry.prices(blueprintId);
        if (tier >= p.length) revert UnknownTier(tier, p.length);
        // a registry that is not this project's may hold any price: refuse what would break the arithmetic
        if (p[tier] == 0 || p[tier] > MAX_RATE) revert RateOutOfRange(tier, p[tier]);
        return p[tier];
    }

    function _accrual(Service storage s) private view returns (uint256 accrued, uint64 t) {
        t = uint64(block.timestamp);
        if (t > s.endsAt) t = s.endsAt;
        if (s.state != State.Active || t <= s.settledAt) return (0, s.settledAt);
        // rate < 2^128 and the interval < 2^64, so this cannot overflow; saturate anyway: the result is capped by
        // the balance, and a settlement must never revert
        accrued = _mulSat(s.ratePerHour, t - s.settledAt) / 3600;
        if (accrued > s.balance) accrued = s.balance;
    }

    function _settle(Service storage s) private {
        (uint256 accrued, uint64 t) = _accrual(s);
        if (s.state != State.Active) return;
        s.balance -= accrued;
        s.earned += accrued;
        s.settledAt = t;
    }

    function _paidUntil(Service storage s) private view returns (uint64) {
        if (s.state != State.Active) return 0;
        if (s.ratePerHour == 0) return type(uint64).max;
        uint256 secs = _mulSat(s.balance, 3600) / s.ratePerHour;
        if (secs >= type(uint64).max) return type(uint64).max;
        uint256 until = uint256(s.settledAt) + secs;
        return until > type(uint64).max ? type(uint64).max : uint64(until);
    }

    /// @dev a * b, or 2^256 - 1 when that overflows.
    function _mulSat(uint256 a, uint256 b) private pure returns (uint256) {
        unchecked {
            if (a == 0) return 0;
            uint256 c = a * b;
            return c / a == b ? c : type(uint256).max;
        }
    }

    function _pull(address from, uint256 amount) private {
        _call(abi.encodeCall(IERC20Minimal.transferFrom, (from, address(this), amount)), address(this), amount);
    }

    function _push(address to, uint256 amount) private {
        if (amount == 0) return;
        _call(abi.encodeCall(IERC20Minimal.transfer, (to, amount)), to, amount);
    }

    /// @dev SafeERC20-style: the token must have code, must not revert, and must return true or nothing.
    function _call(bytes memory data, address to, uint256 amount) private {
        address t = address(token);
        if (t.code.length == 0) revert TransferFailed(t, to, amount);
        (bool ok, bytes memory ret) = t.call(data);
        if (!ok) {
            if (ret.length > 0) {
                assembly {
                    revert(add(ret, 32), mload(ret))
                }
            }
            revert TransferFailed(t, to, amount);
        }
        if (ret.length != 0 && (ret.length != 32 || !abi.decode(ret, (bool)))) revert TransferFailed(t, to, amount);
    }
}
