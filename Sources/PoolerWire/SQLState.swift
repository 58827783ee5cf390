/// SQLSTATE codes the pooler itself raises.
public enum SQLState {
    public static let protocolViolation = "08P01"
    public static let invalidParameterValue = "22023"
    public static let connectionFailure = "08006"
    public static let sqlClientUnableToEstablish = "08001"
    public static let invalidPassword = "28P01"
    public static let invalidAuthorizationSpecification = "28000"
    public static let tooManyConnections = "53300"
    public static let invalidCatalogName = "3D000"
    public static let featureNotSupported = "0A000"
    public static let syntaxError = "42601"
    public static let insufficientPrivilege = "42501"
    public static let adminShutdown = "57P01"
    public static let queryCanceled = "57014"
    public static let internalError = "XX000"
}
