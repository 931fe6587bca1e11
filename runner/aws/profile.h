/*
 * The AWS CLI's shared files: the credentials file (AWS_SHARED_CREDENTIALS_FILE,
 * else ~/.aws/credentials, sections [name]) and the config file
 * (AWS_CONFIG_FILE, else ~/.aws/config, sections [default] and
 * [profile name]). Values are looked up on demand; nothing is cached.
 */
#ifndef OTR_AWS_PROFILE_H
#define OTR_AWS_PROFILE_H

typedef enum otr_aws_file { OTR_AWS_CREDENTIALS_FILE, OTR_AWS_CONFIG_FILE } otr_aws_file;

/* The file's path (free() it), or NULL without HOME. */
char *otr_profile_path(otr_aws_file which);

/* 1 when the file has a section for the profile, 0 when not (or no file). */
int otr_profile_exists(otr_aws_file which, const char *profile);

/* The value of key in the profile's section (free() it), or NULL. A profile
 * given as "sso-session NAME" is the config file's [sso-session NAME]. */
char *otr_profile_get(otr_aws_file which, const char *profile, const char *key);

/* The profile in use: explicit (--profile), else AWS_PROFILE, else "default". */
const char *otr_profile_name(const char *explicit_profile);

/* Region: flag, AWS_REGION, AWS_DEFAULT_REGION, the profile's region; free()
 * the result; NULL when none is set. */
char *otr_region_resolve(const char *flag, const char *profile);

/* Retry mode: flag (--retry-mode), AWS_RETRY_MODE, the profile's retry_mode;
 * free() the result; NULL when none is set (standard). */
char *otr_retry_mode_resolve(const char *flag, const char *profile);

#endif
