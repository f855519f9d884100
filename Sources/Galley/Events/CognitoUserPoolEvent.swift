/// What a Cognito user pool sends its Lambda triggers (pre sign-up, post confirmation, pre and
/// post authentication, pre token generation, custom message, the custom auth challenges, user
/// migration).
///
/// One type serves every trigger: ``triggerSource`` names it (`PreSignUp_SignUp`,
/// `TokenGeneration_HostedAuth`, …), and the request and response fields that trigger does not
/// use are `nil`. Cognito expects the event back, with ``response`` filled in:
///
/// ```swift
/// func handle(_ event: CognitoUserPoolEvent, context: Context) async throws -> CognitoUserPoolEvent {
///     var event = event
///     event.response.autoConfirmUser = event.request.userAttributes?["email"]?.hasSuffix("@example.com")
///     return event
/// }
/// ```
public struct CognitoUserPoolEvent: Codable, Sendable, Equatable {
    public struct CallerContext: Codable, Sendable, Equatable {
        public var awsSdkVersion: String
        public var clientId: String
    }

    public struct Request: Codable, Sendable, Equatable {
        public var userAttributes: [String: String]?
        public var validationData: [String: String]?
        public var clientMetadata: [String: String]?
        /// Post authentication.
        public var newDeviceUsed: Bool?
        /// Pre token generation.
        public var groupConfiguration: GroupConfiguration?
        /// Custom message: the placeholders the message must contain.
        public var codeParameter: String?
        public var usernameParameter: String?
        public var linkParameter: String?
        /// The custom auth challenges.
        public var session: [ChallengeResult]?
        public var challengeName: String?
        public var challengeAnswer: String?
        public var privateChallengeParameters: [String: String]?
        /// User migration.
        public var password: String?
        public var userNotFound: Bool?
    }

    public struct Response: Codable, Sendable, Equatable {
        /// Pre sign-up.
        public var autoConfirmUser: Bool?
        public var autoVerifyEmail: Bool?
        public var autoVerifyPhone: Bool?
        /// Custom message.
        public var smsMessage: String?
        public var emailMessage: String?
        public var emailSubject: String?
        /// Pre token generation.
        public var claimsOverrideDetails: ClaimsOverrideDetails?
        /// Define auth challenge.
        public var challengeName: String?
        public var issueTokens: Bool?
        public var failAuthentication: Bool?
        /// Create auth challenge.
        public var publicChallengeParameters: [String: String]?
        public var privateChallengeParameters: [String: String]?
        public var challengeMetadata: String?
        /// Verify auth challenge.
        public var answerCorrect: Bool?
        /// User migration.
        public var userAttributes: [String: String]?
        public var finalUserStatus: String?
        public var messageAction: String?
        public var desiredDeliveryMediums: [String]?
        public var forceAliasCreation: Bool?

        public init() {}
    }

    public struct GroupConfiguration: Codable, Sendable, Equatable {
        public var groupsToOverride: [String]
        public var iamRolesToOverride: [String]
        public var preferredRole: String?
    }

    public struct ClaimsOverrideDetails: Codable, Sendable, Equatable {
        public var claimsToAddOrOverride: [String: String]?
        public var claimsToSuppress: [String]?
        public var groupOverrideDetails: GroupConfiguration?

        public init(
            claimsToAddOrOverride: [String: String]? = nil,
            claimsToSuppress: [String]? = nil,
            groupOverrideDetails: GroupConfiguration? = nil
        ) {
            self.claimsToAddOrOverride = claimsToAddOrOverride
            self.claimsToSuppress = claimsToSuppress
            self.groupOverrideDetails = groupOverrideDetails
        }
    }

    public struct ChallengeResult: Codable, Sendable, Equatable {
        public var challengeName: String
        public var challengeResult: Bool
        public var challengeMetadata: String?
    }

    public var version: String
    /// Which trigger this is, like `PreSignUp_SignUp` or `PostConfirmation_ConfirmSignUp`.
    public var triggerSource: String
    public var region: String
    public var userPoolId: String
    public var userName: String?
    public var callerContext: CallerContext
    public var request: Request
    public var response: Response
}
