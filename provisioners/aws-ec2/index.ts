/** The AWS EC2 target: public surface. */
export { awsEc2SectionSchema, type AwsEc2Section } from './config.js'
export { createAwsEc2Provisioner, type AwsEc2Provisioner, type AwsEc2ProvisionerOptions } from './createAwsEc2Provisioner.js'
export { confirmEc2SpotPrice, type ConfirmEc2SpotPriceParameters } from './confirmEc2SpotPrice.js'
export { classifyEc2Error } from './classifyEc2Error.js'
export { DEBIAN_AMI_OWNER, ec2Arch } from './createEc2Driver.js'
